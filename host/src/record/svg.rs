//! `mobius report --svg`: a heat map of faults over time (x) and address
//! (y). The y axis is split into one band per area the faults touched
//! (most faults first, at most [`MAX_BANDS`]); a band covers the pages its
//! faults touched, and its height grows with the log of that span, so a
//! sparse area of a few pages stays as visible as a dense one of
//! thousands. Each cell's colour is the log of its fault count on a
//! yellow-to-red scale (the legend gives the counts). Cells are `<rect
//! class="cell" data-count="N">`; the root carries `data-columns`,
//! `data-rows`, `data-cells` and `data-faults` (the faults drawn) for tools
//! and tests.
use std::fmt::Write as _;

use super::error::RecordFileError;
use super::file::DataFile;
use super::report::Band;
use std::collections::HashMap;

/// Time columns.
pub const COLUMNS: u64 = 120;
/// Most areas drawn; the rest are counted in a note.
pub const MAX_BANDS: usize = 40;
const CELL_W: u64 = 6;
const ROW_H: u64 = 6;
const LEFT: u64 = 330;
const TOP: u64 = 60;
const BAND_GAP: u64 = 6;

/// Rows of a band spanning `pages` pages: 2 + 2 log2(pages), at most 40,
/// at most one per page but at least 2 (room for its label).
pub fn band_rows(pages: u64) -> u64 {
    let log = 64 - pages.max(1).leading_zeros() as u64;
    (2 + 2 * log).min(40).min(pages.max(2))
}

struct Layout {
    /// Per band: its first row.
    first_row: Vec<u64>,
    rows: Vec<u64>,
    total_rows: u64,
}

fn layout(bands: &[Band]) -> Layout {
    let mut first_row = Vec::new();
    let mut rows = Vec::new();
    let mut at = 0;
    for b in bands {
        let n = band_rows(b.last_page - b.first_page + 1);
        first_row.push(at);
        rows.push(n);
        at += n;
    }
    Layout {
        first_row,
        rows,
        total_rows: at,
    }
}

/// The SVG of `data`'s records over the areas `bands` (from the report's
/// first pass) and the time range `(first, last)` TSC.
pub fn draw(
    data: &DataFile,
    bands: &[Band],
    (t0, t1): (u64, u64),
) -> Result<String, RecordFileError> {
    let shown = &bands[..bands.len().min(MAX_BANDS)];
    let index: HashMap<_, usize> = shown.iter().enumerate().map(|(i, b)| (b.key, i)).collect();
    let lay = layout(shown);
    let span = (t1 - t0).max(1);
    let mut cells: HashMap<(u64, u64, usize), u64> = HashMap::new();
    let mut drawn = 0u64;
    for r in data.records()? {
        let r = r?;
        let Some(&i) = index.get(&(r.pid, r.area_base, r.area_type, r.area_flags)) else {
            continue;
        };
        let b = &shown[i];
        let col = ((r.tsc.saturating_sub(t0)) as u128 * u128::from(COLUMNS)
            / (u128::from(span) + 1)) as u64;
        let pages = b.last_page - b.first_page + 1;
        let page = (r.addr >> 12).clamp(b.first_page, b.last_page) - b.first_page;
        let row = (u128::from(page) * u128::from(lay.rows[i]) / u128::from(pages)) as u64;
        *cells.entry((col, row, i)).or_default() += 1;
        drawn += 1;
    }
    Ok(render(data, shown, bands, &lay, &cells, drawn, span))
}

fn colour(count: u64, max: u64) -> String {
    // Yellow (255,255,178) to dark red (189,0,38) on a log scale.
    let t = if max <= 1 {
        1.0
    } else {
        (count as f64).ln_1p() / (max as f64).ln_1p()
    };
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(255.0, 189.0),
        mix(255.0, 0.0),
        mix(178.0, 38.0)
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn render(
    data: &DataFile,
    shown: &[Band],
    all: &[Band],
    lay: &Layout,
    cells: &HashMap<(u64, u64, usize), u64>,
    drawn: u64,
    span: u64,
) -> String {
    let band_y = |i: usize| TOP + lay.first_row[i] * ROW_H + i as u64 * BAND_GAP;
    let plot_h = lay.total_rows * ROW_H + shown.len() as u64 * BAND_GAP;
    let width = LEFT + COLUMNS * CELL_W + 40;
    let height = TOP + plot_h + 110;
    let max = cells.values().copied().max().unwrap_or(0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" data-columns="{COLUMNS}" data-rows="{}" data-cells="{}" data-faults="{drawn}">"#,
        lay.total_rows,
        cells.len()
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>"#
    );
    let title = format!(
        "Page faults of '{}' over time and address ({} recorded, 1 in {})",
        data.header.title, data.trailer.records, data.header.sample
    );
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="15" font-weight="bold">{}</text>"#,
        escape(&title)
    );
    let _ = writeln!(
        s,
        r#"<text x="10" y="42">Each band is an area the faults touched (pid, type, permissions, node base; its touched pages top to bottom, lowest address first); band height grows with the log of its span.</text>"#
    );
    for (i, b) in shown.iter().enumerate() {
        let y = band_y(i);
        let h = lay.rows[i] * ROW_H;
        let _ = writeln!(
            s,
            r##"<rect class="band" x="{LEFT}" y="{y}" width="{}" height="{h}" fill="#f4f4f4"/>"##,
            COLUMNS * CELL_W
        );
        let label = format!("pid {} {} ({} faults)", b.key.0, b.label, b.faults);
        let range = format!(
            "{:#x}..{:#x}",
            b.first_page << 12,
            (b.last_page << 12) | 0xfff
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LEFT - 6,
            y + 10,
            escape(&label)
        );
        if h >= 22 {
            let _ = writeln!(
                s,
                r##"<text x="{}" y="{}" text-anchor="end" fill="#666">{range}</text>"##,
                LEFT - 6,
                y + 22
            );
        }
    }
    let mut keys: Vec<_> = cells.iter().collect();
    keys.sort();
    for (&(col, row, i), &n) in keys {
        let x = LEFT + col * CELL_W;
        let y = band_y(i) + row * ROW_H;
        let _ = writeln!(
            s,
            r#"<rect class="cell" x="{x}" y="{y}" width="{CELL_W}" height="{ROW_H}" fill="{}" data-count="{n}"><title>{n} faults</title></rect>"#,
            colour(n, max)
        );
    }
    axis(&mut s, data, TOP + plot_h, span);
    legend(&mut s, TOP + plot_h + 60, max);
    if all.len() > shown.len() {
        let rest: u64 = all[shown.len()..].iter().map(|b| b.faults).sum();
        let _ = writeln!(
            s,
            r#"<text x="10" y="{}">{} more areas with {rest} faults not drawn</text>"#,
            TOP + plot_h + 100,
            all.len() - shown.len()
        );
    }
    s.push_str("</svg>\n");
    s
}

fn axis(s: &mut String, data: &DataFile, y: u64, span: u64) {
    let khz = data.header.tsc_khz;
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="black"/>"#,
        LEFT + COLUMNS * CELL_W
    );
    for q in 0..=4u64 {
        let x = LEFT + COLUMNS * CELL_W * q / 4;
        let at = span as f64 * q as f64 / 4.0;
        let label = if khz == 0 {
            format!("{at:.0} cycles")
        } else {
            format!("{:.1} ms", at / khz as f64)
        };
        let _ = writeln!(
            s,
            r#"<line x1="{x}" y1="{y}" x2="{x}" y2="{}" stroke="black"/>"#,
            y + 5
        );
        let _ = writeln!(
            s,
            r#"<text x="{x}" y="{}" text-anchor="middle">{label}</text>"#,
            y + 18
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">time since the first recorded fault</text>"#,
        LEFT + COLUMNS * CELL_W / 2,
        y + 34
    );
}

fn legend(s: &mut String, y: u64, max: u64) {
    let _ = writeln!(s, r#"<text x="10" y="{}">faults per cell:</text>"#, y + 10);
    let steps = [
        1,
        max.div_ceil(100).max(1),
        max.div_ceil(10).max(1),
        max.max(1),
    ];
    let mut x = 110;
    let mut last = 0;
    for v in steps {
        if v == last {
            continue;
        }
        last = v;
        let _ = writeln!(
            s,
            r#"<rect class="legend" x="{x}" y="{y}" width="14" height="14" fill="{}"/>"#,
            colour(v, max.max(1))
        );
        let _ = writeln!(s, r#"<text x="{}" y="{}">{v}</text>"#, x + 18, y + 11);
        x += 70;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_grow_with_the_log_of_the_span() {
        assert_eq!(band_rows(1), 2);
        assert_eq!(band_rows(2), 2);
        assert_eq!(band_rows(16), 12);
        assert_eq!(band_rows(2000), 24);
        assert_eq!(band_rows(u64::MAX), 40);
    }

    #[test]
    fn colours_run_from_yellow_to_red() {
        assert_eq!(colour(1, 1), "#bd0026");
        assert_eq!(colour(0, 100), "#ffffb2");
        assert_eq!(colour(100, 100), "#bd0026");
    }
}
