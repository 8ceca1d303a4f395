//! Prints the WordCountJob CRD: `crdgen > crds/wordcountjob.yaml`.
fn main() {
    print!("{}", wordcount_operator::crd::crd_yaml());
}
