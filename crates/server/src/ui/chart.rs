//! A horizontal bar chart computed on the server and drawn as inline SVG: no chart
//! library, no script, nothing the Content-Security-Policy would have to allow. The
//! template only places the rectangles this module measured.

/// Width of the whole drawing (the SVG scales to its container through `viewBox`).
pub const WIDTH: u32 = 720;
/// Where bars start; the labels sit left of it.
pub const BAR_X: u32 = 250;
/// The longest bar, leaving room for its value on the right.
const BAR_SPACE: u32 = 380;
const ROW_HEIGHT: u32 = 32;
const BAR_HEIGHT: u32 = 20;
/// Labels longer than this are shortened in the drawing (the full text is in its title).
const LABEL_CHARS: usize = 32;

/// One bar: a total, and the part of it that is errors.
pub struct Bar {
    /// The full label (tooltip and accessible text).
    pub label: String,
    /// The label as drawn.
    pub short: String,
    pub total: u64,
    pub errors: u64,
    pub y: u32,
    pub text_y: u32,
    pub width: u32,
    pub error_width: u32,
    /// Where the value text goes, just right of the bar.
    pub value_x: u32,
}

/// The measured chart.
pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub bar_x: u32,
    pub bar_height: u32,
    pub bars: Vec<Bar>,
}

impl Chart {
    /// Lays out `(label, total, errors)` rows in order, scaled to the largest total.
    pub fn new(rows: Vec<(String, u64, u64)>) -> Self {
        let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
        let bars = rows
            .into_iter()
            .zip(0u32..)
            .map(|((label, total, errors), index)| {
                let y = index * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2;
                let width = scale(total, max);
                Bar {
                    short: shorten(&label),
                    label,
                    total,
                    errors,
                    y,
                    text_y: y + BAR_HEIGHT - 5,
                    width,
                    error_width: scale(errors.min(total), max),
                    value_x: BAR_X + width + 6,
                }
            })
            .collect::<Vec<_>>();
        let count = u32::try_from(bars.len()).unwrap_or(u32::MAX);
        Self {
            width: WIDTH,
            height: count.saturating_mul(ROW_HEIGHT).max(ROW_HEIGHT),
            bar_x: BAR_X,
            bar_height: BAR_HEIGHT,
            bars,
        }
    }
}

/// Bar length for `value` of `max`; at least 1 unit so a non-zero value stays visible.
fn scale(value: u64, max: u64) -> u32 {
    if value == 0 {
        return 0;
    }
    let scaled = u128::from(value) * u128::from(BAR_SPACE) / u128::from(max);
    u32::try_from(scaled).unwrap_or(BAR_SPACE).max(1)
}

fn shorten(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        return label.to_owned();
    }
    let kept: String = label.chars().take(LABEL_CHARS - 1).collect();
    format!("{kept}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_total() {
        let chart = Chart::new(vec![
            ("openai / gpt-5".into(), 10, 2),
            ("anthropic / claude".into(), 5, 0),
            ("x".into(), 0, 0),
        ]);
        assert_eq!(chart.bars[0].width, BAR_SPACE);
        assert_eq!(chart.bars[0].error_width, BAR_SPACE / 5);
        assert_eq!(chart.bars[1].width, BAR_SPACE / 2);
        assert_eq!(chart.bars[2].width, 0);
        assert_eq!(chart.bars[1].y, ROW_HEIGHT + 6);
        assert_eq!(chart.height, 3 * ROW_HEIGHT);
        assert_eq!(scale(1, 1_000_000), 1, "tiny values stay visible");
    }

    #[test]
    fn long_labels_are_shortened() {
        let long = "openai-compatible / a-very-long-model-name-indeed";
        let short = shorten(long);
        assert_eq!(short.chars().count(), LABEL_CHARS);
        assert!(short.ends_with('…'));
        assert_eq!(shorten("short"), "short");
    }
}
