//! Small self-contained PNG plots for reports: line charts (linear or logarithmic axes) and snapshot panels of
//! fields, drawn into an RGB canvas with a built-in 5×7 bitmap font. No system fonts or plotting libraries.

use std::path::Path;

/// An RGB image.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

type Rgb = [u8; 3];

const PALETTE: [Rgb; 8] = [
    [31, 119, 180],
    [214, 39, 40],
    [44, 160, 44],
    [255, 127, 14],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [23, 190, 207],
];

/// 5×7 glyphs, one byte per row (low five bits, most significant = leftmost column).
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [14, 17, 19, 21, 25, 17, 14],
        '1' => [4, 12, 4, 4, 4, 4, 14],
        '2' => [14, 17, 1, 2, 4, 8, 31],
        '3' => [31, 2, 4, 2, 1, 17, 14],
        '4' => [2, 6, 10, 18, 31, 2, 2],
        '5' => [31, 16, 30, 1, 1, 17, 14],
        '6' => [6, 8, 16, 30, 17, 17, 14],
        '7' => [31, 1, 2, 4, 8, 8, 8],
        '8' => [14, 17, 17, 14, 17, 17, 14],
        '9' => [14, 17, 17, 15, 1, 2, 12],
        'A' => [14, 17, 17, 31, 17, 17, 17],
        'B' => [30, 17, 17, 30, 17, 17, 30],
        'C' => [14, 17, 16, 16, 16, 17, 14],
        'D' => [28, 18, 17, 17, 17, 18, 28],
        'E' => [31, 16, 16, 30, 16, 16, 31],
        'F' => [31, 16, 16, 30, 16, 16, 16],
        'G' => [14, 17, 16, 23, 17, 17, 15],
        'H' => [17, 17, 17, 31, 17, 17, 17],
        'I' => [14, 4, 4, 4, 4, 4, 14],
        'J' => [7, 2, 2, 2, 2, 18, 12],
        'K' => [17, 18, 20, 24, 20, 18, 17],
        'L' => [16, 16, 16, 16, 16, 16, 31],
        'M' => [17, 27, 21, 21, 17, 17, 17],
        'N' => [17, 17, 25, 21, 19, 17, 17],
        'O' => [14, 17, 17, 17, 17, 17, 14],
        'P' => [30, 17, 17, 30, 16, 16, 16],
        'Q' => [14, 17, 17, 17, 21, 18, 13],
        'R' => [30, 17, 17, 30, 20, 18, 17],
        'S' => [15, 16, 16, 14, 1, 1, 30],
        'T' => [31, 4, 4, 4, 4, 4, 4],
        'U' => [17, 17, 17, 17, 17, 17, 14],
        'V' => [17, 17, 17, 17, 17, 10, 4],
        'W' => [17, 17, 17, 21, 21, 21, 10],
        'X' => [17, 17, 10, 4, 10, 17, 17],
        'Y' => [17, 17, 17, 10, 4, 4, 4],
        'Z' => [31, 1, 2, 4, 8, 16, 31],
        '.' => [0, 0, 0, 0, 0, 12, 12],
        ',' => [0, 0, 0, 0, 12, 4, 8],
        '-' => [0, 0, 0, 31, 0, 0, 0],
        '+' => [0, 4, 4, 31, 4, 4, 0],
        ':' => [0, 12, 12, 0, 12, 12, 0],
        '(' => [2, 4, 8, 8, 8, 4, 2],
        ')' => [8, 4, 2, 2, 2, 4, 8],
        '/' => [0, 1, 2, 4, 8, 16, 0],
        '=' => [0, 0, 31, 0, 31, 0, 0],
        '_' => [0, 0, 0, 0, 0, 0, 31],
        '%' => [24, 25, 2, 4, 8, 19, 3],
        '<' => [2, 4, 8, 16, 8, 4, 2],
        '>' => [8, 4, 2, 1, 2, 4, 8],
        '*' => [0, 4, 21, 14, 21, 4, 0],
        '^' => [4, 10, 17, 0, 0, 0, 0],
        _ => [0; 7],
    }
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Self {
        Self { width, height, rgb: vec![255; width * height * 3] }
    }

    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }

    pub fn fill_rect(&mut self, x0: i64, y0: i64, w: i64, h: i64, c: Rgb) {
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                self.set(x, y, c);
            }
        }
    }

    /// A line of the given thickness; `dash` > 0 draws dashes of that many pixels.
    pub fn line(&mut self, a: (f64, f64), b: (f64, f64), c: Rgb, thick: i64, dash: usize) {
        let n = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
        for i in 0..=n {
            if dash > 0 && (i / dash) % 2 == 1 {
                continue;
            }
            let t = i as f64 / n as f64;
            let (x, y) = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
            let (x, y) = (x.round() as i64, y.round() as i64);
            for dy in 0..thick {
                for dx in 0..thick {
                    self.set(x + dx - thick / 2, y + dy - thick / 2, c);
                }
            }
        }
    }

    /// Text at (x, y) (top left) with glyphs scaled by `scale`.
    pub fn text(&mut self, x: i64, y: i64, s: &str, scale: i64, c: Rgb) {
        for (k, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..5 {
                    if bits & (1 << (4 - col)) != 0 {
                        self.fill_rect(x + (k as i64 * 6 + col) * scale, y + row as i64 * scale, scale, scale, c);
                    }
                }
            }
        }
    }

    pub fn text_width(s: &str, scale: i64) -> i64 {
        s.chars().count() as i64 * 6 * scale
    }

    /// Writes the canvas as an 8-bit RGB PNG (to a temporary name, then renamed).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("png.partial");
        {
            let file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            let mut enc = png::Encoder::new(file, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().map_err(std::io::Error::other)?;
            w.write_image_data(&self.rgb).map_err(std::io::Error::other)?;
        }
        std::fs::rename(&tmp, path)
    }
}

/// One curve of a line chart.
#[derive(Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
    /// Draw a marker at each point instead of joining them (a scatter plot).
    pub markers: bool,
}

impl Series {
    pub fn new(name: &str, points: Vec<(f64, f64)>) -> Self {
        Self { name: name.to_string(), points, dashed: false, markers: false }
    }
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
    pub fn markers(mut self) -> Self {
        self.markers = true;
        self
    }
}

/// A chart in progress: `line_chart` returns it drawn; `with_log_x` redraws with a logarithmic x axis.
pub struct Chart {
    canvas: Canvas,
    spec: Option<(String, String, String, Vec<Series>, bool)>,
}

impl Chart {
    pub fn with_log_x(mut self) -> Self {
        if let Some((title, xl, yl, series, log_y)) = self.spec.take() {
            self.canvas = draw_chart(&title, &xl, &yl, &series, true, log_y);
            self.spec = Some((title, xl, yl, series, log_y));
        }
        self
    }
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        self.canvas.save(path)
    }
    pub fn canvas(&self) -> &Canvas {
        &self.canvas
    }
}

/// A line chart; `log_y` plots the y axis logarithmically (non-positive values are left out).
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series], log_y: bool) -> Chart {
    let owned: Vec<Series> = series.to_vec();
    Chart {
        canvas: draw_chart(title, x_label, y_label, &owned, false, log_y),
        spec: Some((title.into(), x_label.into(), y_label.into(), owned, log_y)),
    }
}

fn ticks(lo: f64, hi: f64, log: bool) -> Vec<f64> {
    if log {
        let (a, b) = (lo.floor() as i64, hi.ceil() as i64);
        let step = ((b - a) / 6).max(1);
        return (a..=b)
            .step_by(step as usize)
            .map(|e| e as f64)
            .filter(|e| *e >= lo - 1e-9 && *e <= hi + 1e-9)
            .collect();
    }
    let span = (hi - lo).max(1e-300);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| span / s <= 6.0).unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = vec![];
    while t <= hi + 1e-9 * span {
        out.push(t);
        t += step;
    }
    out
}

fn label(v: f64, log: bool) -> String {
    if log {
        return format!("1E{}", v as i64);
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.0e}").to_uppercase()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}

fn draw_chart(title: &str, x_label: &str, y_label: &str, series: &[Series], log_x: bool, log_y: bool) -> Canvas {
    let (w, h) = (900usize, 560usize);
    let mut c = Canvas::new(w, h);
    let (left, right, top, bottom) = (90.0, 210.0, 50.0, 60.0);
    let (pw, ph) = (w as f64 - left - right, h as f64 - top - bottom);
    let tx = |v: f64| if log_x { v.log10() } else { v };
    let ty = |v: f64| if log_y { v.log10() } else { v };
    let ok = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite() && (!log_x || p.0 > 0.0) && (!log_y || p.1 > 0.0);
    let pts: Vec<(f64, f64)> =
        series.iter().flat_map(|s| s.points.iter().filter(|p| ok(p)).map(|p| (tx(p.0), ty(p.1)))).collect();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in &pts {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if pts.is_empty() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-12 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-12 * y0.abs().max(1.0) {
        y0 -= 0.5;
        y1 += 0.5;
    }
    if !log_y {
        let pad = 0.05 * (y1 - y0);
        y0 -= pad;
        y1 += pad;
    }
    let px = |x: f64| left + (x - x0) / (x1 - x0) * pw;
    let py = |y: f64| top + ph - (y - y0) / (y1 - y0) * ph;
    let grey = [225, 225, 225];
    let black = [0, 0, 0];
    for t in ticks(x0, x1, log_x) {
        c.line((px(t), top), (px(t), top + ph), grey, 1, 0);
        let l = label(t, log_x);
        c.text(px(t) as i64 - Canvas::text_width(&l, 1) / 2, (top + ph + 8.0) as i64, &l, 1, black);
    }
    for t in ticks(y0, y1, log_y) {
        c.line((left, py(t)), (left + pw, py(t)), grey, 1, 0);
        let l = label(t, log_y);
        c.text(left as i64 - Canvas::text_width(&l, 1) - 6, py(t) as i64 - 3, &l, 1, black);
    }
    c.line((left, top), (left, top + ph), black, 1, 0);
    c.line((left, top + ph), (left + pw, top + ph), black, 1, 0);
    c.line((left, top), (left + pw, top), black, 1, 0);
    c.line((left + pw, top), (left + pw, top + ph), black, 1, 0);
    for (k, s) in series.iter().enumerate() {
        let color = PALETTE[(if s.dashed { k.saturating_sub(1) } else { k }
            / if series.iter().any(|s| s.dashed) { 2 } else { 1 })
            % PALETTE.len()];
        let mut prev: Option<(f64, f64)> = None;
        for p in &s.points {
            if !ok(p) {
                prev = None;
                continue;
            }
            let q = (px(tx(p.0)), py(ty(p.1)));
            if s.markers {
                c.fill_rect(q.0 as i64 - 1, q.1 as i64 - 1, 3, 3, color);
                continue;
            }
            if let Some(a) = prev {
                c.line(a, q, color, 2, if s.dashed { 6 } else { 0 });
            }
            prev = Some(q);
        }
        if s.points.len() == 1 && ok(&s.points[0]) {
            let q = (px(tx(s.points[0].0)), py(ty(s.points[0].1)));
            c.fill_rect(q.0 as i64 - 2, q.1 as i64 - 2, 5, 5, color);
        }
        let ly = top as i64 + 10 + 18 * k as i64;
        let lx = (left + pw) as i64 + 12;
        if s.markers {
            c.fill_rect(lx + 10, ly + 1, 5, 5, color);
        } else {
            c.line(
                (lx as f64, ly as f64 + 3.0),
                (lx as f64 + 24.0, ly as f64 + 3.0),
                color,
                2,
                if s.dashed { 6 } else { 0 },
            );
        }
        c.text(lx + 30, ly, &s.name, 1, black);
    }
    c.text((left + pw / 2.0) as i64 - Canvas::text_width(title, 2) / 2, 14, title, 2, black);
    c.text((left + pw / 2.0) as i64 - Canvas::text_width(x_label, 2) / 2, (top + ph + 30.0) as i64, x_label, 2, black);
    c.text(8, (top - 22.0) as i64, y_label, 2, black);
    c
}

/// Colour of `t` in [0, 1] on a blue–white–red scale.
fn diverging(t: f64) -> Rgb {
    let t = t.clamp(0.0, 1.0);
    let (a, b, s) = if t < 0.5 {
        ([59.0, 76.0, 192.0], [240.0, 240.0, 240.0], t * 2.0)
    } else {
        ([240.0, 240.0, 240.0], [180.0, 4.0, 38.0], t * 2.0 - 1.0)
    };
    [(a[0] + s * (b[0] - a[0])) as u8, (a[1] + s * (b[1] - a[1])) as u8, (a[2] + s * (b[2] - a[2])) as u8]
}

/// Prediction (top row) and reference (bottom row) at several steps: images for 2D fields, curves for 1D ones.
/// Each panel is `(label, prediction, reference)`; all share one colour scale.
pub fn snapshots(title: &str, panels: &[(String, Vec<f64>, Vec<f64>)], ny: usize, nx: usize) -> Canvas {
    let cell = 220usize;
    let cols = panels.len().max(1);
    let (w, h) = (cols * (cell + 20) + 40, 2 * (cell + 30) + 80);
    let mut c = Canvas::new(w, h);
    let black = [0, 0, 0];
    c.text(20, 12, title, 2, black);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (_, p, u) in panels {
        for v in p.iter().chain(u).filter(|v| v.is_finite()) {
            lo = lo.min(*v);
            hi = hi.max(*v);
        }
    }
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        (lo, hi) = (lo.min(0.0) - 1.0, hi.max(0.0) + 1.0);
    }
    for (k, (name, p, u)) in panels.iter().enumerate() {
        let x0 = 20 + k * (cell + 20);
        c.text(x0 as i64, 44, name, 2, black);
        for (row, f) in [p, u].iter().enumerate() {
            let y0 = 70 + row * (cell + 30);
            if ny > 1 {
                for py in 0..cell {
                    for px in 0..cell {
                        let (i, j) = (px * nx / cell, (cell - 1 - py) * ny / cell);
                        let v = f[j * nx + i];
                        let col = if v.is_finite() { diverging((v - lo) / (hi - lo)) } else { [0, 0, 0] };
                        c.set((x0 + px) as i64, (y0 + py) as i64, col);
                    }
                }
            } else {
                c.fill_rect(x0 as i64, y0 as i64, cell as i64, cell as i64, [248, 248, 248]);
                let yp = |v: f64| y0 as f64 + cell as f64 * (1.0 - (v - lo) / (hi - lo));
                for (series, color, dash) in [(p, [214u8, 39, 40], 0usize), (u, [31, 119, 180], 5)] {
                    for i in 1..nx {
                        let a = ((x0 + (i - 1) * cell / nx) as f64, yp(series[i - 1]));
                        let b = ((x0 + i * cell / nx) as f64, yp(series[i]));
                        if a.1.is_finite() && b.1.is_finite() {
                            c.line(a, b, color, 2, dash);
                        }
                    }
                }
                let _ = row;
            }
        }
    }
    let scale = format!("colour scale {} to {}", label(lo, false), label(hi, false));
    c.text(20, (h - 22) as i64, &scale, 1, black);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_draw_and_encode() {
        let dir = tempfile::tempdir().unwrap();
        let s = Series::new("a", (1..50).map(|i| (i as f64, 1.0 / i as f64)).collect());
        let chart = line_chart("decay", "step", "error", &[s], true);
        let ink = chart.canvas().rgb.iter().filter(|v| **v != 255).count();
        assert!(ink > 1000, "{ink}");
        chart.save(&dir.path().join("a.png")).unwrap();
        let bytes = std::fs::read(dir.path().join("a.png")).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let snap = snapshots("t", &[("s".into(), vec![0.0, 1.0, 2.0, 3.0], vec![1.0; 4])], 2, 2);
        assert!(snap.rgb.iter().any(|v| *v != 255));
    }
}
