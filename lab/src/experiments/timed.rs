//! A repeated measurement, shared by the measuring and the tables.

/// A repeated measurement: seconds by their median, and what the median
/// run also saw. With an even count the median is the upper of the two
/// middle runs, so that it is a run that happened, not an average.
pub struct Timed<T> {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub detail: T,
}
