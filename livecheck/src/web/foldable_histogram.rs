//! A histogram of seconds that can take in another's observations: what a version's runtime series becomes when
//! the version is folded into `other` (prometheus-client's own histogram cannot be read back or merged).

use std::sync::{Arc, Mutex};

use prometheus_client::{
    encoding::{EncodeMetric, MetricEncoder, NoLabelSet},
    metrics::{MetricType, TypedMetric},
};

/// The upper bounds: 1 ms to about 4.4 min, doubling (as the other histograms of seconds), then +Inf.
fn bounds() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 19).chain(std::iter::once(f64::MAX))
}

#[derive(Debug)]
struct Inner {
    sum: f64,
    count: u64,
    /// Per bucket (not cumulative), with its upper bound.
    buckets: Vec<(f64, u64)>,
}

/// Seconds, in the buckets of [`bounds`]; clones share their observations.
#[derive(Clone, Debug)]
pub(super) struct FoldableHistogram(Arc<Mutex<Inner>>);

impl Default for FoldableHistogram {
    fn default() -> Self {
        FoldableHistogram(Arc::new(Mutex::new(Inner {
            sum: 0.0,
            count: 0,
            buckets: bounds().map(|b| (b, 0)).collect(),
        })))
    }
}

impl FoldableHistogram {
    pub(super) fn observe(&self, value: f64) {
        let mut inner = crate::sync::lock(&self.0);
        inner.sum += value;
        inner.count += 1;
        if let Some(bucket) = inner.buckets.iter_mut().find(|(bound, _)| value <= *bound) {
            bucket.1 += 1;
        }
    }

    /// Takes in every observation of `other`.
    pub(super) fn absorb(&self, other: &FoldableHistogram) {
        if Arc::ptr_eq(&self.0, &other.0) {
            return;
        }
        let theirs = crate::sync::lock(&other.0);
        let (sum, count, buckets) = (theirs.sum, theirs.count, theirs.buckets.clone());
        drop(theirs);
        let mut inner = crate::sync::lock(&self.0);
        inner.sum += sum;
        inner.count += count;
        for (mine, (_, theirs)) in inner.buckets.iter_mut().zip(buckets) {
            mine.1 += theirs;
        }
    }
}

impl TypedMetric for FoldableHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for FoldableHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let inner = crate::sync::lock(&self.0);
        encoder.encode_histogram::<NoLabelSet>(inner.sum, inner.count, &inner.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorbs_another_s_observations() {
        let (a, b) = (FoldableHistogram::default(), FoldableHistogram::default());
        a.observe(0.0015);
        b.observe(0.0015);
        b.observe(1e9);
        a.absorb(&b);
        a.absorb(&a);
        let inner = crate::sync::lock(&a.0);
        assert_eq!(inner.count, 3);
        assert_eq!(inner.buckets[1].1, 2);
        assert_eq!(inner.buckets.last().unwrap().1, 1);
    }
}
