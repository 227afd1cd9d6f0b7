//! Pictures drawn on the server as SVG: bar charts whose numbers are also in a table
//! beside them, so they read without JavaScript and without sight.

/// One bar: its label, its value, and where it is drawn.
pub(super) struct Bar {
    pub label: String,
    pub value: i64,
    pub x: i64,
    pub y: i64,
    pub height: i64,
    /// Whether its label is written under it (long series label every few bars).
    pub labelled: bool,
}

/// A bar chart, laid out for a `WIDTH` × `HEIGHT` view box.
pub(super) struct BarChart {
    pub id: &'static str,
    pub title: String,
    pub summary: String,
    pub bars: Vec<Bar>,
    pub bar_width: i64,
    pub unit: &'static str,
}

pub(super) const WIDTH: i64 = 320;
pub(super) const HEIGHT: i64 = 160;
/// Room under the bars for their labels.
const AXIS: i64 = 20;

impl BarChart {
    pub fn new(
        id: &'static str,
        title: impl Into<String>,
        unit: &'static str,
        series: Vec<(String, i64)>,
    ) -> Self {
        let max = series.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
        let count = i64::try_from(series.len()).unwrap_or(1).max(1);
        let slot = WIDTH / count;
        let bar_width = (slot - 2).max(1);
        let label_every = (count / 6).max(1);
        let total: i64 = series.iter().map(|(_, v)| *v).sum();
        let bars = series
            .into_iter()
            .enumerate()
            .map(|(i, (label, value))| {
                let i = i64::try_from(i).unwrap_or(0);
                let height = value * (HEIGHT - AXIS) / max;
                Bar {
                    label,
                    value,
                    x: i * slot + 1,
                    y: HEIGHT - AXIS - height,
                    height,
                    labelled: i % label_every == 0,
                }
            })
            .collect();
        let title = title.into();
        Self {
            id,
            summary: format!("{title}: {total} {unit} in all, at most {max} in one bar"),
            title,
            bars,
            bar_width,
            unit,
        }
    }

    pub fn label_y(&self) -> i64 {
        HEIGHT - 5
    }
}

/// Seconds from a lease's due end to verified gone, in buckets people think in.
pub(super) fn revoke_buckets(seconds: &[i64]) -> Vec<(String, i64)> {
    const BUCKETS: [(&str, i64); 6] = [
        ("≤1s", 1),
        ("≤5s", 5),
        ("≤30s", 30),
        ("≤1m", 60),
        ("≤5m", 300),
        ("≤1h", 3600),
    ];
    let mut counts = vec![0_i64; BUCKETS.len() + 1];
    for &s in seconds {
        let at = BUCKETS
            .iter()
            .position(|(_, limit)| s <= *limit)
            .unwrap_or(BUCKETS.len());
        counts[at] += 1;
    }
    BUCKETS
        .iter()
        .map(|(label, _)| (*label).to_string())
        .chain(std::iter::once(">1h".to_string()))
        .zip(counts)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fit_the_box_and_the_tallest_fills_it() {
        let chart = BarChart::new(
            "c",
            "Grants",
            "grants",
            vec![("a".into(), 0), ("b".into(), 5), ("c".into(), 10)],
        );
        assert_eq!(chart.bars[2].height, HEIGHT - AXIS);
        assert_eq!(chart.bars[0].height, 0);
        assert!(
            chart
                .bars
                .iter()
                .all(|b| b.x + chart.bar_width <= WIDTH && b.y >= 0)
        );
        assert_eq!(
            chart.summary,
            "Grants: 15 grants in all, at most 10 in one bar"
        );
    }

    #[test]
    fn revocations_fall_in_their_buckets() {
        let buckets = revoke_buckets(&[0, 1, 2, 61, 7200]);
        let counts: Vec<i64> = buckets.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [2, 1, 0, 0, 1, 0, 1]);
    }
}
