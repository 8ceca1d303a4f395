//! The CRD and the workers agree on faults (issue 8, item 1).
//!
//! For edge values of every field of a crash and a straggler (the bounds
//! are read from the generated schema, and the values just outside them
//! tried too): a fault the schema admits renders (`Fault::to_string`, what
//! the worker pods get as `--fault`) to an argument `Fault::from_str` parses
//! back to the same fault; a fault the worker refuses, the schema refuses;
//! and what the schema refuses is refused by the worker, or cannot be held
//! by the CRD's types, or names a worker index beyond `spec.workers` (a
//! bound only the job knows, a CEL rule).

// A test crate: its helpers fail by panicking, as its tests do.
#![allow(clippy::unwrap_used)]

use kube::core::cel::Validator;
use serde_json::{json, Value};
use std::str::FromStr;
use wordcount_operator::crd::{self, WordCountJob};
use wordcount_protocol::{
    fault::{FIRST_FILE, MAX_SLOW, MIN_SLOW},
    CrashPoint, Fault,
};

/// Workers in the test job: the schema's maximum, so that indices go high.
const WORKERS: i64 = 1000;

fn schema() -> Value {
    let crd = crd::crd();
    let version = &crd.spec.versions[0];
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref());
    serde_json::to_value(schema.expect("the CRD has a schema")).expect("a JSON schema")
}

/// The schema of one item of `spec.faults.<list>`.
fn item_schema(schema: &Value, list: &str) -> Value {
    schema["properties"]["spec"]["properties"]["faults"]["properties"][list]["items"].clone()
}

fn bound(field: &Value, key: &str) -> Option<f64> {
    field.get(key).and_then(Value::as_f64)
}

/// Whether the schema of a field admits a value (the OpenAPI part the API
/// server checks: type, integer format, bounds, enum).
fn field_admits(field: &Value, v: &Value) -> bool {
    if let Some(choices) = field.get("enum").and_then(Value::as_array) {
        return choices.contains(v);
    }
    let Some(x) = v.as_f64() else {
        return false;
    };
    let in_bounds = bound(field, "minimum").is_none_or(|m| x >= m)
        && bound(field, "maximum").is_none_or(|m| x <= m);
    match field["type"].as_str() {
        Some("integer") => {
            let fits = match field["format"].as_str() {
                Some("int32") => v.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
                _ => v.as_i64().is_some(),
            };
            fits && in_bounds
        }
        Some("number") => in_bounds,
        other => panic!("unexpected field type {other:?}"),
    }
}

/// Whether the schema of a list item admits `item`.
fn item_admits(schema: &Value, item: &Value) -> bool {
    let props = &schema["properties"];
    let required = schema["required"].as_array().cloned().unwrap_or_default();
    required
        .iter()
        .all(|r| item.get(r.as_str().unwrap_or("")).is_some())
        && item
            .as_object()
            .into_iter()
            .flatten()
            .all(|(k, v)| props.get(k).is_some_and(|f| field_admits(f, v)))
}

fn job(faults: Value) -> Value {
    json!({
        "apiVersion": "wordcount.dev/v1alpha1",
        "kind": "WordCountJob",
        "metadata": {"name": "agree", "namespace": "default"},
        "spec": {"input": {"hostPath": {"path": "/d"}}, "workers": WORKERS, "faults": faults},
    })
}

/// Checks one fault; `list` is "crashes" or "stragglers", `meant` the fault
/// the values mean if the protocol's types can hold them.
fn check(schema: &Value, list: &str, item: Value, meant: Option<Fault>) {
    let object = job(json!({ list: [item.clone()] }));
    let in_schema = item_admits(&item_schema(schema, list), &item);
    let cel_errors = match Validator::new().validate(schema, &object, None) {
        Ok(()) => vec![],
        Err(errors) => errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
    };
    let admitted = in_schema && cel_errors.is_empty();
    let typed = serde_json::from_value::<WordCountJob>(object);
    let worker_refuses = meant.is_none_or(|f| f.to_string().parse::<Fault>() != Ok(f));

    if admitted {
        let job = typed.unwrap_or_else(|e| panic!("{item}: admitted but not held: {e}"));
        let faults = job.spec.worker_faults();
        assert_eq!(faults.len(), 1, "{item}: renders to one fault");
        let arg = faults[0].to_string();
        assert_eq!(
            arg.parse::<Fault>(),
            Ok(faults[0]),
            "{item}: {arg} parses back"
        );
        assert_eq!(Some(faults[0]), meant, "{item}: {arg} is the fault meant");
    } else {
        let beyond_workers =
            in_schema && cel_errors.iter().all(|e| e.contains("less than workers"));
        assert!(
            worker_refuses || typed.is_err() || beyond_workers,
            "{item}: refused by the schema ({cel_errors:?}) but the worker takes it"
        );
    }
    if worker_refuses {
        assert!(
            !admitted,
            "{item}: the worker refuses it but the schema admits it"
        );
    }
}

/// Integers around a field's bounds, as the schema states them.
fn integer_edges(field: &Value, also: &[i64]) -> Vec<i64> {
    let mut v: Vec<i64> = also.to_vec();
    for key in ["minimum", "maximum"] {
        if let Some(b) = bound(field, key) {
            let b = b as i64;
            v.extend([b - 1, b, b + 1]);
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn the_schemas_bounds_are_the_protocols() {
    let s = schema();
    let crash = &item_schema(&s, "crashes")["properties"];
    assert_eq!(
        bound(&crash["file"], "minimum"),
        Some(f64::from(FIRST_FILE))
    );
    let points: Vec<Value> = CrashPoint::ALL.iter().map(|p| json!(p.as_str())).collect();
    assert_eq!(crash["point"]["enum"], json!(points));
    let slow = &item_schema(&s, "stragglers")["properties"]["slowFactor"];
    assert_eq!(
        (bound(slow, "minimum"), bound(slow, "maximum")),
        (Some(MIN_SLOW), Some(MAX_SLOW))
    );
}

#[test]
fn every_crash_the_schema_admits_the_worker_parses_back() {
    let s = schema();
    let props = item_schema(&s, "crashes")["properties"].clone();
    let workers = integer_edges(
        &props["worker"],
        &[
            0,
            1,
            WORKERS - 1,
            WORKERS,
            i32::MAX.into(),
            i64::from(i32::MAX) + 1,
        ],
    );
    let files = integer_edges(&props["file"], &[0, 1, 2, i32::MAX.into(), u32::MAX.into()]);
    let mut points: Vec<String> = props["point"]["enum"]
        .as_array()
        .expect("crash points are an enum")
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    points.extend(["explode", "", "after_read", "AFTER-READ"].map(str::to_string));
    let mut checked = 0;
    for &worker in &workers {
        for point in &points {
            for file in files.iter().map(Some).chain([None]) {
                let mut item = json!({"worker": worker, "point": point});
                if let Some(f) = file {
                    item["file"] = json!(f);
                }
                let meant = (|| {
                    Some(Fault::Crash {
                        worker: u32::try_from(worker).ok()?,
                        point: CrashPoint::from_str(point).ok()?,
                        file: match file {
                            Some(f) => u32::try_from(*f).ok()?,
                            None => FIRST_FILE,
                        },
                    })
                })();
                check(&s, "crashes", item, meant);
                checked += 1;
            }
        }
    }
    assert!(checked > 300, "{checked} crashes checked");
}

#[test]
fn every_straggler_the_schema_admits_the_worker_parses_back() {
    let s = schema();
    let props = item_schema(&s, "stragglers")["properties"].clone();
    let workers = integer_edges(&props["worker"], &[0, WORKERS - 1, WORKERS]);
    let slow = &props["slowFactor"];
    let (min, max) = (
        bound(slow, "minimum").expect("a minimum factor"),
        bound(slow, "maximum").expect("a maximum factor"),
    );
    let next = |x: f64, up: bool| {
        // The float just beside x (both bounds are positive).
        f64::from_bits(if up { x.to_bits() + 1 } else { x.to_bits() - 1 })
    };
    let factors = [
        0.0,
        -1.0,
        0.99,
        1.0,
        1.5,
        2.0,
        999.99,
        1000.0,
        1000.01,
        1e308,
        min,
        max,
        next(min, false),
        next(min, true),
        next(max, false),
        next(max, true),
    ];
    for &worker in &workers {
        for factor in factors {
            let meant = u32::try_from(worker)
                .ok()
                .map(|worker| Fault::Slow { worker, factor });
            check(
                &s,
                "stragglers",
                json!({"worker": worker, "slowFactor": factor}),
                meant,
            );
        }
    }
}
