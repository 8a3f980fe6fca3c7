//! Report figures through plotters: line charts (linear or logarithmic axes with decade ticks) and panels of
//! fields with colour bars, each written as SVG and PNG. Text uses DejaVu Sans embedded in the binary
//! (`assets/fonts`, Bitstream Vera licence), so nothing depends on the fonts of the machine that draws.
//!
//! Colours: the Okabe–Ito palette (readable for colour-blind readers) in an order that alternates dark and light,
//! with dash patterns for series that must stay apart in grey; fields use viridis (sequential) or ColorBrewer's
//! RdBu (diverging, centred at zero for signed fields). Legends sit beside the plot, never on the data.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;

/// The font family every text uses.
const FAMILY: &str = "sans-serif";
static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // the bytes are a valid TrueType file checked into the repository; a failure would show as missing text
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Okabe–Ito colours, dark and light alternating: blue, orange, bluish green, vermillion, sky blue, reddish
/// purple, black.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(86, 180, 233),
    RGBColor(204, 121, 167),
    RGBColor(0, 0, 0),
];

const GRID: RGBColor = RGBColor(225, 225, 225);
const MINOR: RGBColor = RGBColor(242, 242, 242);

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stroke {
    Solid,
    Dashed,
    Dotted,
    Markers,
}

/// One labelled series of a line chart.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub stroke: Stroke,
    /// Index into [`PALETTE`]; by default the series' position in the chart.
    pub colour: Option<usize>,
}

impl Series {
    pub fn new(label: &str, points: Vec<(f64, f64)>) -> Self {
        Self { label: label.into(), points, stroke: Stroke::Solid, colour: None }
    }

    pub fn dashed(mut self) -> Self {
        self.stroke = Stroke::Dashed;
        self
    }

    pub fn dotted(mut self) -> Self {
        self.stroke = Stroke::Dotted;
        self
    }

    pub fn markers(mut self) -> Self {
        self.stroke = Stroke::Markers;
        self
    }

    /// Draw with palette colour `k` (series that belong together share a colour and differ in stroke).
    pub fn colour(mut self, k: usize) -> Self {
        self.colour = Some(k);
        self
    }
}

/// A line chart: title, axis labels (with units), series, linear or logarithmic axes.
#[derive(Clone, Debug)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
}

impl LineChart {
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x: false,
            log_y: false,
            series: vec![],
        }
    }

    pub fn log_x(mut self) -> Self {
        self.log_x = true;
        self
    }

    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }

    pub fn with(mut self, s: Series) -> Self {
        self.series.push(s);
        self
    }

    /// Writes `<stem>.svg` and `<stem>.png` into `dir` (1000 × 600 pixels); returns both paths.
    pub fn save(&self, dir: &Path, stem: &str) -> std::io::Result<[PathBuf; 2]> {
        let fig = Figure::new(
            &self.title,
            vec![vec![Panel::Line(Box::new(LineChart { title: String::new(), ..self.clone() }))]],
        );
        fig.size(1000, 600).save(dir, stem)
    }
}

/// How values map to colours.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ColourMap {
    /// viridis, from `lo` to `hi`.
    Sequential,
    /// RdBu, white at zero, symmetric about zero.
    Diverging,
}

/// The colour scale of a field panel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    pub lo: f64,
    pub hi: f64,
    pub map: ColourMap,
}

impl Scale {
    /// A scale for the finite values of `fields` together: diverging and symmetric about zero when they take both
    /// signs (or when `signed` says the quantity is signed), viridis otherwise.
    pub fn for_values<'a>(fields: impl IntoIterator<Item = &'a [f64]>, signed: bool) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for f in fields {
            for v in f.iter().filter(|v| v.is_finite()) {
                lo = lo.min(*v);
                hi = hi.max(*v);
            }
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if signed || (lo < 0.0 && hi > 0.0) {
            let m = lo.abs().max(hi.abs()).max(1e-300);
            Self { lo: -m, hi: m, map: ColourMap::Diverging }
        } else {
            if hi <= lo {
                hi = lo + lo.abs().max(1.0) * 1e-6;
            }
            Self { lo, hi, map: ColourMap::Sequential }
        }
    }

    /// The colour of `v` (non-finite values are grey).
    pub fn colour(&self, v: f64) -> RGBColor {
        if !v.is_finite() {
            return RGBColor(128, 128, 128);
        }
        let t = ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        let table: &[(u8, u8, u8)] = match self.map {
            ColourMap::Sequential => &VIRIDIS,
            ColourMap::Diverging => &RDBU,
        };
        let x = t * (table.len() - 1) as f64;
        let i = (x.floor() as usize).min(table.len() - 2);
        let f = x - i as f64;
        let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
        let (a, b) = (table[i], table[i + 1]);
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

/// viridis at nine equally spaced points.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 45, 123),
    (59, 82, 139),
    (44, 114, 142),
    (33, 145, 140),
    (40, 174, 128),
    (94, 201, 98),
    (173, 220, 48),
    (253, 231, 37),
];

/// ColorBrewer RdBu (9 classes), blue for negative, red for positive.
const RDBU: [(u8, u8, u8); 9] = [
    (33, 102, 172),
    (67, 147, 195),
    (146, 197, 222),
    (209, 229, 240),
    (247, 247, 247),
    (253, 219, 199),
    (244, 165, 130),
    (214, 96, 77),
    (178, 24, 43),
];

/// A 2D field on a uniform grid, drawn as cells with a colour bar.
#[derive(Clone, Debug)]
pub struct FieldPanel {
    pub title: String,
    pub nx: usize,
    pub ny: usize,
    /// Row-major `(y, x)`, x fastest.
    pub values: Vec<f64>,
    /// Domain size `(x, y)`; the axes run from 0.
    pub extent: (f64, f64),
    pub scale: Scale,
    /// The colour bar's label (quantity and unit).
    pub label: String,
}

/// Grids finer than this per axis are drawn as block averages (the title says so).
const MAX_CELLS: usize = 128;

impl FieldPanel {
    /// The values to draw: block averages when the grid is finer than [`MAX_CELLS`] per axis, with the grid drawn.
    fn shown(&self) -> (usize, usize, Vec<f64>, usize) {
        let b = self.nx.max(self.ny).div_ceil(MAX_CELLS).max(1);
        if b == 1 {
            return (self.nx, self.ny, self.values.clone(), 1);
        }
        let (mx, my) = (self.nx.div_ceil(b), self.ny.div_ceil(b));
        let mut out = vec![0.0; mx * my];
        let mut count = vec![0usize; mx * my];
        for j in 0..self.ny {
            for i in 0..self.nx {
                let k = (j / b) * mx + i / b;
                out[k] += self.values[j * self.nx + i];
                count[k] += 1;
            }
        }
        for (o, c) in out.iter_mut().zip(&count) {
            *o /= (*c).max(1) as f64;
        }
        (mx, my, out, b)
    }
}

/// One panel of a figure.
#[derive(Clone, Debug)]
pub enum Panel {
    Line(Box<LineChart>),
    Field(Box<FieldPanel>),
}

/// A figure: a title over rows of panels, written as SVG and PNG.
#[derive(Clone, Debug)]
pub struct Figure {
    pub title: String,
    pub rows: Vec<Vec<Panel>>,
    width: u32,
    height: u32,
}

impl Figure {
    /// Panels of 480 × 380 pixels by default.
    pub fn new(title: &str, rows: Vec<Vec<Panel>>) -> Self {
        let cols = rows.iter().map(Vec::len).max().unwrap_or(1).max(1) as u32;
        let n = rows.len().max(1) as u32;
        Self { title: title.into(), rows, width: 480 * cols, height: 380 * n + 50 }
    }

    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    /// Writes `<stem>.svg` and `<stem>.png` into `dir`; returns both paths. The PNG is the SVG rasterised at twice
    /// its size (resvg, with the same embedded font), so the two show the same figure.
    pub fn save(&self, dir: &Path, stem: &str) -> std::io::Result<[PathBuf; 2]> {
        register_font();
        let io = |what: String| std::io::Error::other(format!("{stem}: {what}"));
        let svg_path = dir.join(format!("{stem}.svg"));
        let png_path = dir.join(format!("{stem}.png"));
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (self.width, self.height)).into_drawing_area();
            self.draw(&root).map_err(io)?;
            root.present().map_err(|e| io(e.to_string()))?;
        }
        // cells of a heat map must meet without anti-aliased seams
        let svg = svg.replace("<rect ", "<rect shape-rendering=\"crispEdges\" ");
        write_atomically(&svg_path, svg.as_bytes())?;
        write_atomically(&png_path, &rasterise(&svg, PNG_SCALE).map_err(io)?)?;
        Ok([svg_path, png_path])
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(er)?;
        let body = if self.title.is_empty() {
            root.clone()
        } else {
            root.titled(&self.title, (FAMILY, 22).into_font().color(&BLACK)).map_err(er)?
        };
        let rows = self.rows.len().max(1);
        let row_areas = body.split_evenly((rows, 1));
        for (row, area) in self.rows.iter().zip(row_areas) {
            let cells = area.split_evenly((1, row.len().max(1)));
            for (panel, cell) in row.iter().zip(cells) {
                match panel {
                    Panel::Line(c) => draw_line_chart(&cell, c)?,
                    Panel::Field(f) => draw_field(&cell, f)?,
                }
            }
        }
        Ok(())
    }
}

/// PNGs are drawn at this multiple of the SVG's pixel size.
pub const PNG_SCALE: u32 = 2;

/// An SVG document as PNG bytes at `scale` times its size, text in the embedded font.
pub fn rasterise(svg: &str, scale: u32) -> Result<Vec<u8>, String> {
    use resvg::{tiny_skia, usvg};
    static FONTS: std::sync::OnceLock<std::sync::Arc<usvg::fontdb::Database>> = std::sync::OnceLock::new();
    let db = FONTS.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_font_data(FONT.to_vec());
        db.set_sans_serif_family("DejaVu Sans");
        std::sync::Arc::new(db)
    });
    let opt = usvg::Options { fontdb: db.clone(), font_family: "DejaVu Sans".into(), ..usvg::Options::default() };
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| format!("SVG not readable: {e}"))?;
    let size = tree.size().to_int_size();
    let (w, h) = (size.width() * scale, size.height() * scale);
    let mut pixmap = tiny_skia::Pixmap::new(w, h).ok_or_else(|| format!("cannot allocate a {w}×{h} image"))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::from_scale(scale as f32, scale as f32), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| format!("PNG encoding: {e}"))
}

fn er<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("{}.partial", path.extension().and_then(|e| e.to_str()).unwrap_or_default()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Superscript digits for decade labels.
fn superscript(n: i32) -> String {
    let digits = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut s = String::new();
    if n < 0 {
        s.push('⁻');
    }
    for c in n.unsigned_abs().to_string().chars() {
        s.push(digits[c.to_digit(10).unwrap_or(0) as usize]);
    }
    s
}

/// A number for a tick label: short, without trailing zeros.
pub fn tick_label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let e = a.log10().floor() as i32;
        let m = v / 10f64.powi(e);
        return if (m.abs() - 1.0).abs() < 1e-9 {
            format!("{}10{}", if m < 0.0 { "−" } else { "" }, superscript(e))
        } else {
            format!("{}×10{}", trim(format!("{m:.2}")), superscript(e))
        };
    }
    trim(format!("{v:.4}")).replace('-', "−")
}

fn trim(s: String) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// Tick positions at 1, 2 or 5 times a power of ten, about `n` of them over `[lo, hi]`.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = (hi - lo).abs().max(1e-300);
    let raw = span / n.max(1) as f64;
    let p = 10f64.powf(raw.log10().floor());
    let count = |s: f64| (hi / s).floor() - (lo / s).ceil() + 1.0;
    let step = [0.5, 1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .min_by(|a, b| {
            let (da, db) = ((count(*a) - n as f64).abs(), (count(*b) - n as f64).abs());
            da.total_cmp(&db).then(b.total_cmp(a))
        })
        .unwrap_or(p);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).map(|v| if v.abs() < step * 1e-9 { 0.0 } else { v }).collect()
}

/// A linear coordinate with the tick positions we chose (plotters' own choice for f64 ranges cannot be replaced
/// while keeping custom labels).
#[derive(Clone, Debug)]
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ticked {
    fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> Self {
        Self { lo, hi, ticks }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = ((v - self.lo) / (self.hi - self.lo)).clamp(-4.0, 5.0);
        let t = if t.is_finite() { t } else { 0.0 };
        limit.0 + (t * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() { vec![] } else { self.ticks.clone() }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// One axis after the transform: range, major ticks (in transformed units) and minor lines.
struct AxisPlan {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    minor: Vec<f64>,
    log: bool,
    /// Label log ticks as plain numbers (ranges under three decades, where 2 and 5 are labelled too).
    plain: bool,
}

fn plan_axis(values: impl Iterator<Item = f64>, log: bool) -> AxisPlan {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if log {
        // the data's range with a small margin; ticks at the decades inside, and at 2× and 5× when fewer than
        // three decades fall inside (every second decade beyond nine)
        if hi - lo < 0.3 {
            let mid = 0.5 * (lo + hi);
            (lo, hi) = (mid - 0.15, mid + 0.15);
        }
        let pad = 0.03 * (hi - lo);
        let (a, b) = (lo - pad, hi + pad);
        let decades: Vec<f64> = ((a.ceil() as i64)..=(b.floor() as i64)).map(|k| k as f64).collect();
        let every = if decades.len() > 9 { 2 } else { 1 };
        let mut ticks: Vec<f64> = decades.iter().copied().filter(|d| (*d as i64).rem_euclid(every) == 0).collect();
        if decades.len() < 3 {
            for k in (a.floor() as i64)..=(b.ceil() as i64) {
                for m in [2.0f64, 5.0] {
                    let t = k as f64 + m.log10();
                    if (a..=b).contains(&t) {
                        ticks.push(t);
                    }
                }
            }
            ticks.sort_by(f64::total_cmp);
        }
        let mut minor = vec![];
        for k in (a.floor() as i64)..=(b.ceil() as i64) {
            for m in 2..10 {
                let t = k as f64 + (m as f64).log10();
                if (a..=b).contains(&t) {
                    minor.push(t);
                }
            }
        }
        AxisPlan { lo: a, hi: b, ticks, minor, log, plain: decades.len() < 3 }
    } else {
        if hi <= lo {
            let w = lo.abs().max(1.0) * 0.05;
            lo -= w;
            hi += w;
        }
        let pad = (hi - lo) * 0.04;
        let (lo, hi) = (lo - pad, hi + pad);
        AxisPlan { lo, hi, ticks: nice_ticks(lo, hi, 6), minor: vec![], log, plain: true }
    }
}

fn axis_label(v: f64, log: bool) -> String {
    if log {
        if (v - v.round()).abs() < 1e-9 {
            format!("10{}", superscript(v.round() as i32))
        } else {
            tick_label(10f64.powf(v))
        }
    } else {
        tick_label(v)
    }
}

fn series_style(s: &Series, index: usize) -> ShapeStyle {
    let c = PALETTE[s.colour.unwrap_or(index) % PALETTE.len()];
    ShapeStyle { color: c.to_rgba(), filled: s.stroke == Stroke::Markers, stroke_width: 2 }
}

fn draw_line_chart<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, c: &LineChart) -> Result<(), String> {
    let tx = |v: f64, log: bool| if log { if v > 0.0 { v.log10() } else { f64::NAN } } else { v };
    let series: Vec<Vec<(f64, f64)>> = c
        .series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .map(|&(x, y)| (tx(x, c.log_x), tx(y, c.log_y)))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect()
        })
        .collect();
    let xs = plan_axis(series.iter().flatten().map(|p| p.0), c.log_x);
    let ys = plan_axis(series.iter().flatten().map(|p| p.1), c.log_y);
    // the legend sits in a column to the right of the plot
    let (w, _) = area.dim_in_pixel();
    let longest = c.series.iter().map(|s| s.label.chars().count()).max().unwrap_or(0);
    let legend_w = if c.series.is_empty() { 0 } else { (longest as u32 * 8 + 56).min(w / 3) };
    let (plot, legend) = area.split_horizontally(w - legend_w);
    let plot = if c.title.is_empty() { plot } else { plot.titled(&c.title, (FAMILY, 16)).map_err(er)? };
    let mut chart = ChartBuilder::on(&plot)
        .margin(10)
        .x_label_area_size(48)
        .y_label_area_size(68)
        .build_cartesian_2d(Ticked::new(xs.lo, xs.hi, xs.ticks.clone()), Ticked::new(ys.lo, ys.hi, ys.ticks.clone()))
        .map_err(er)?;
    let (xlog, ylog) = (xs.log && !xs.plain, ys.log && !ys.plain);
    let (xexp, yexp) = (xs.log && xs.plain, ys.log && ys.plain);
    let xf = move |v: &f64| if xexp { tick_label(10f64.powf(*v)) } else { axis_label(*v, xlog) };
    let yf = move |v: &f64| if yexp { tick_label(10f64.powf(*v)) } else { axis_label(*v, ylog) };
    chart
        .configure_mesh()
        .x_desc(c.x_label.as_str())
        .y_desc(c.y_label.as_str())
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(er)?;
    // minor decade lines
    let minor_style = ShapeStyle { color: MINOR.to_rgba(), filled: false, stroke_width: 1 };
    chart
        .draw_series(xs.minor.iter().map(|&x| PathElement::new(vec![(x, ys.lo), (x, ys.hi)], minor_style)))
        .map_err(er)?;
    chart
        .draw_series(ys.minor.iter().map(|&y| PathElement::new(vec![(xs.lo, y), (xs.hi, y)], minor_style)))
        .map_err(er)?;
    for (i, (s, pts)) in c.series.iter().zip(&series).enumerate() {
        let style = series_style(s, i);
        match s.stroke {
            Stroke::Solid => {
                chart.draw_series(LineSeries::new(pts.iter().copied(), style)).map_err(er)?;
            }
            Stroke::Dashed => {
                chart.draw_series(DashedLineSeries::new(pts.iter().copied(), 9, 6, style)).map_err(er)?;
            }
            Stroke::Dotted => {
                chart.draw_series(DashedLineSeries::new(pts.iter().copied(), 2, 5, style)).map_err(er)?;
            }
            Stroke::Markers => {
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 2, style))).map_err(er)?;
            }
        }
    }
    if series.iter().all(Vec::is_empty) {
        plot.draw(&Text::new("no finite data", (80, 60), (FAMILY, 16))).map_err(er)?;
    }
    // legend: a line sample and the label per series
    for (i, s) in c.series.iter().enumerate() {
        let y = 50 + 22 * i as i32;
        let style = series_style(s, i);
        match s.stroke {
            Stroke::Markers => {
                legend.draw(&Circle::new((18, y), 3, style)).map_err(er)?;
            }
            Stroke::Solid => {
                legend.draw(&PathElement::new(vec![(4, y), (34, y)], style)).map_err(er)?;
            }
            Stroke::Dashed | Stroke::Dotted => {
                let (on, off) = if s.stroke == Stroke::Dashed { (9, 5) } else { (2, 4) };
                let mut x = 4;
                while x < 34 {
                    legend.draw(&PathElement::new(vec![(x, y), ((x + on).min(34), y)], style)).map_err(er)?;
                    x += on + off;
                }
            }
        }
        legend.draw(&Text::new(s.label.as_str(), (42, y - 8), (FAMILY, 14))).map_err(er)?;
    }
    Ok(())
}

fn draw_field<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, f: &FieldPanel) -> Result<(), String> {
    let area = area.margin(0, 0, 14, 0);
    let (w, _) = area.dim_in_pixel();
    let (main, bar) = area.split_horizontally(w.saturating_sub(104));
    let (mx, my, vals, block) = f.shown();
    let title = if block > 1 { format!("{} ({block}×{block} block means)", f.title) } else { f.title.clone() };
    let main = main.titled(&title, (FAMILY, 15)).map_err(er)?;
    let (lx, ly) = (f.extent.0.max(1e-300), f.extent.1.max(1e-300));
    // keep the domain's aspect ratio: pad the side that has room to spare
    let (mw, mh) = main.dim_in_pixel();
    let (aw, ah) = (mw.saturating_sub(52 + 12) as f64, mh.saturating_sub(36 + 12) as f64);
    let ratio = lx / ly;
    let (px, py) = if aw > ah * ratio { ((aw - ah * ratio) / 2.0, 0.0) } else { (0.0, (ah - aw / ratio) / 2.0) };
    let main = main.margin(py as u32, py as u32, px as u32, px as u32);
    let mut chart = ChartBuilder::on(&main)
        .margin(6)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(Ticked::new(0.0, lx, nice_ticks(0.0, lx, 4)), Ticked::new(0.0, ly, nice_ticks(0.0, ly, 4)))
        .map_err(er)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("x")
        .y_desc("y")
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .draw()
        .map_err(er)?;
    let (hx, hy) = (lx / mx as f64, ly / my as f64);
    chart
        .draw_series((0..my).flat_map(|j| (0..mx).map(move |i| (i, j))).map(|(i, j)| {
            let c = f.scale.colour(vals[j * mx + i]);
            Rectangle::new([(i as f64 * hx, j as f64 * hy), ((i + 1) as f64 * hx, (j + 1) as f64 * hy)], c.filled())
        }))
        .map_err(er)?;
    // colour bar as tall as the field, its label reading downwards on the right
    let (_, plot_y) = chart.plotting_area().get_pixel_range();
    let (_, base_y) = bar.get_base_pixel();
    let (bw, bh) = bar.dim_in_pixel();
    let top = (plot_y.start - base_y).max(0) as u32;
    let bottom = (base_y + bh as i32 - plot_y.end).max(0) as u32;
    let bar = bar.margin(top, bottom, 6, 0);
    let (bar, strip) = bar.split_horizontally(bw.saturating_sub(6 + 28));
    let label_style = TextStyle::from((FAMILY, 12).into_font()).transform(FontTransform::Rotate90).pos(
        plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        ),
    );
    let (_, sh) = strip.dim_in_pixel();
    strip.draw(&Text::new(f.label.as_str(), (8, (sh / 2) as i32), label_style)).map_err(er)?;
    let (lo, hi) = (f.scale.lo, f.scale.hi);
    let mut cb = ChartBuilder::on(&bar)
        .y_label_area_size(0)
        .right_y_label_area_size(44)
        .build_cartesian_2d(Ticked::new(0.0, 1.0, vec![]), Ticked::new(lo, hi, nice_ticks(lo, hi, 5)))
        .map_err(er)?;
    let n = 96;
    cb.draw_series((0..n).map(|k| {
        let (a, b) = (lo + (hi - lo) * k as f64 / n as f64, lo + (hi - lo) * (k + 1) as f64 / n as f64);
        Rectangle::new([(0.0, a), (1.0, b)], f.scale.colour(0.5 * (a + b)).filled())
    }))
    .map_err(er)?;
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_label_formatter(&|v| tick_label(*v))
        .label_style((FAMILY, 11))
        .axis_desc_style((FAMILY, 12))
        .draw()
        .map_err(er)?;
    cb.plotting_area()
        .draw(&Rectangle::new(
            [(0.0, lo), (1.0, hi)],
            ShapeStyle { color: BLACK.to_rgba(), filled: false, stroke_width: 1 },
        ))
        .map_err(er)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers_and_decades_are_labelled_as_powers() {
        assert_eq!(nice_ticks(0.0, 1.0, 5), [0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        assert_eq!(nice_ticks(-3.2, 7.9, 5), [-2.0, 0.0, 2.0, 4.0, 6.0]);
        assert_eq!(axis_label(-3.0, true), "10⁻³");
        assert_eq!(axis_label(2f64.log10(), true), "2");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(-1.5), "−1.5");
        assert_eq!(tick_label(1e-5), "10⁻⁵");
        assert_eq!(tick_label(2.5e6), "2.5×10⁶");
        let a = plan_axis([-3.7, -0.2].into_iter(), true);
        assert_eq!(a.ticks, [-3.0, -2.0, -1.0]);
        assert!(a.lo < -3.7 && a.lo > -3.9 && a.hi > -0.2 && a.hi < 0.0, "{} {}", a.lo, a.hi);
        assert!(a.minor.iter().all(|m| (a.lo..=a.hi).contains(m)) && a.minor.len() > 20);
        let wide = plan_axis([-12.0, 1.0].into_iter(), true);
        assert!(wide.ticks.len() <= 8 && wide.ticks.contains(&-12.0), "{:?}", wide.ticks);
        // within one decade: 2 and 5 join the decade
        let narrow = plan_axis([0.0, 16f64.log10()].into_iter(), true);
        let labels: Vec<String> = narrow.ticks.iter().map(|t| axis_label(*t, true)).collect();
        assert_eq!(labels, ["10⁰", "2", "5", "10¹"]);
    }

    #[test]
    fn scales_centre_signed_fields_at_white() {
        let s = Scale::for_values([&[-0.5, 2.0][..]], false);
        assert_eq!((s.lo, s.hi, s.map), (-2.0, 2.0, ColourMap::Diverging));
        assert_eq!(s.colour(0.0), RGBColor(247, 247, 247));
        assert_eq!(s.colour(-2.0), RGBColor(33, 102, 172));
        let p = Scale::for_values([&[1.0, 3.0][..]], false);
        assert_eq!(p.map, ColourMap::Sequential);
        assert_eq!((p.colour(1.0), p.colour(3.0)), (RGBColor(68, 1, 84), RGBColor(253, 231, 37)));
        assert_eq!(p.colour(f64::NAN), RGBColor(128, 128, 128));
    }

    /// Where the sample figures go: `ANSATZ_FIGURE_DIR` to look at them, else a temporary folder.
    fn out_dir() -> (Option<tempfile::TempDir>, std::path::PathBuf) {
        match std::env::var("ANSATZ_FIGURE_DIR") {
            Ok(d) => {
                std::fs::create_dir_all(&d).unwrap();
                (None, d.into())
            }
            Err(_) => {
                let t = tempfile::tempdir().unwrap();
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        }
    }

    fn png_size(path: &Path) -> (u32, u32) {
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let r = dec.read_info().unwrap();
        (r.info().width, r.info().height)
    }

    #[test]
    fn line_charts_and_field_panels_are_valid_svg_and_png_with_their_text() {
        let (_keep, dir) = out_dir();
        let steps: Vec<f64> = (1..=200).map(f64::from).collect();
        let chart = LineChart::new("DyMixOp: error against step", "rollout step (Δt = 0.05)", "nRMSE (1)")
            .log_y()
            .with(Series::new("nRMSE", steps.iter().map(|&t| (t, 1e-3 * (t / 20.0).exp())).collect()))
            .with(Series::new("VRMSE", steps.iter().map(|&t| (t, 2e-3 * (t / 25.0).exp())).collect()).dashed())
            .with(Series::new("solver at 1/2 resolution", steps.iter().map(|&t| (t, 3e-3)).collect()).dotted());
        let [svg, png] = chart.save(&dir, "error").unwrap();
        assert_eq!(png_size(&png), (2000, 1200));
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
        for needle in ["DyMixOp: error against step", "rollout step (Δt = 0.05)", "nRMSE (1)", "VRMSE", "10⁻³", "10⁰"]
        {
            assert!(text.contains(needle), "the SVG lacks {needle:?}");
        }
        assert!(!text.contains("10⁻²·5"), "only decades are labelled");

        let (nx, ny) = (48, 32);
        let field = |phase: f64| -> Vec<f64> {
            (0..nx * ny)
                .map(|k| {
                    let (i, j) = ((k % nx) as f64 / nx as f64, (k / nx) as f64 / ny as f64);
                    (std::f64::consts::TAU * i + phase).sin() * (std::f64::consts::PI * j).cos()
                })
                .collect()
        };
        let (p, r) = (field(0.1), field(0.0));
        let e: Vec<f64> = p.iter().zip(&r).map(|(a, b)| a - b).collect();
        let shared = Scale::for_values([&p[..], &r[..]], false);
        let panel = |title: &str, v: Vec<f64>, scale: Scale, label: &str| {
            Panel::Field(Box::new(FieldPanel {
                title: title.into(),
                nx,
                ny,
                values: v,
                extent: (2.0, 1.0),
                scale,
                label: label.into(),
            }))
        };
        let fig = Figure::new(
            "u of sample 0",
            vec![vec![
                panel("prediction, step 10", p, shared, "u (1)"),
                panel("reference, step 10", r, shared, "u (1)"),
                panel("error, step 10", e.clone(), Scale::for_values([&e[..]], true), "prediction − reference"),
            ]],
        );
        let [svg, png] = fig.save(&dir, "snapshots").unwrap();
        assert_eq!(png_size(&png), (2880, 860));
        let text = std::fs::read_to_string(&svg).unwrap();
        for needle in ["prediction, step 10", "reference, step 10", "error, step 10", "prediction − reference", "u (1)"]
        {
            assert!(text.contains(needle), "the SVG lacks {needle:?}");
        }
        // three heat maps of nx·ny cells, three colour bars of 96 steps
        assert!(text.matches("<rect").count() >= 3 * (nx * ny + 96), "{}", text.matches("<rect").count());
        // white (zero) appears in the diverging error map
        assert!(text.contains("#F7F7F7") || text.contains("rgb(247,247,247)") || text.contains("#f7f7f7"));
    }
}
