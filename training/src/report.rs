//! `report.html`: one self-contained page per report. The figures are inline SVG, the styles are in the page,
//! and there is no script and no reference to anything outside the page except the report's own files (the
//! PNG and SVG copies of each figure, linked next to it).

use std::fmt::Write as _;
use std::path::Path;

/// What a page shows.
pub struct Page<'a> {
    pub title: &'a str,
    /// The summary in the markdown subset our summaries use (headings, pipe tables, paragraphs, `code`).
    pub summary_markdown: &'a str,
    /// Sections of preformatted text: (heading, text), e.g. the run's configuration.
    pub texts: Vec<(String, String)>,
    /// Key–value tables: (heading, rows), e.g. the data's provenance.
    pub tables: Vec<(String, Vec<(String, String)>)>,
    /// Figure stems in the report directory (`<stem>.svg` inlined, `<stem>.png` linked), with captions.
    pub figures: Vec<(String, String)>,
    /// Links to other pages below the page's directory: (label, relative path).
    pub links: Vec<(String, String)>,
}

/// HTML-escapes text.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Inline markdown: `code` spans and the `\|` escape of table cells.
fn inline(s: &str) -> String {
    let s = s.replace("\\|", "|");
    let mut o = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(o, "<code>{}</code>", escape(part));
        } else {
            o.push_str(&escape(part));
        }
    }
    o
}

/// Cells of a pipe-table row (`\|` inside a cell is not a separator).
fn cells(line: &str) -> Vec<String> {
    let line = line.trim().trim_start_matches('|');
    let line = line.strip_suffix('|').unwrap_or(line);
    let mut out = vec![];
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'|') {
            cur.push_str("\\|");
            chars.next();
        } else if c == '|' {
            out.push(cur.trim().to_string());
            cur.clear();
        } else {
            cur.push(c);
        }
    }
    out.push(cur.trim().to_string());
    out
}

/// The markdown subset of our summaries as HTML: `#`/`##`/`###` headings, pipe tables (first row the header,
/// second the separator), and paragraphs.
pub fn markdown_to_html(md: &str) -> String {
    let mut html = String::new();
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    let mut para: Vec<&str> = vec![];
    let flush = |para: &mut Vec<&str>, html: &mut String| {
        if !para.is_empty() {
            let _ = writeln!(html, "<p>{}</p>", inline(&para.join(" ")));
            para.clear();
        }
    };
    while i < lines.len() {
        let l = lines[i].trim_end();
        if let Some(h) = l.strip_prefix("### ") {
            flush(&mut para, &mut html);
            let _ = writeln!(html, "<h4>{}</h4>", inline(h));
        } else if let Some(h) = l.strip_prefix("## ") {
            flush(&mut para, &mut html);
            let _ = writeln!(html, "<h3>{}</h3>", inline(h));
        } else if let Some(h) = l.strip_prefix("# ") {
            flush(&mut para, &mut html);
            let _ = writeln!(html, "<h2>{}</h2>", inline(h));
        } else if l.starts_with('|') {
            flush(&mut para, &mut html);
            let mut rows = vec![];
            while i < lines.len() && lines[i].trim_start().starts_with('|') {
                rows.push(cells(lines[i]));
                i += 1;
            }
            html.push_str("<table>\n");
            for (k, row) in rows.iter().enumerate() {
                if k == 1 && row.iter().all(|c| c.chars().all(|ch| ch == '-' || ch == ':') && !c.is_empty()) {
                    continue;
                }
                let tag = if k == 0 { "th" } else { "td" };
                html.push_str("<tr>");
                for c in row {
                    let _ = write!(html, "<{tag}>{}</{tag}>", inline(c));
                }
                html.push_str("</tr>\n");
            }
            html.push_str("</table>\n");
            continue;
        } else if l.trim().is_empty() {
            flush(&mut para, &mut html);
        } else {
            para.push(l.trim());
        }
        i += 1;
    }
    flush(&mut para, &mut html);
    html
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;max-width:1500px;margin:2em auto;padding:0 1.5em;\
color:#222;line-height:1.45}h1{font-size:1.6em}h2{font-size:1.35em;margin-top:1.6em}h3{font-size:1.15em}\
table{border-collapse:collapse;margin:0.8em 0}td,th{border:1px solid #ccc;padding:0.25em 0.6em;text-align:left;\
vertical-align:top}th{background:#f0f0f0}tr:nth-child(even) td{background:#fafafa}code,pre{font-family:'DejaVu Sans Mono',\
monospace;font-size:0.9em}pre{background:#f6f6f6;border:1px solid #ddd;padding:0.8em;overflow:auto;max-height:32em}\
figure{margin:1.2em 0;border-top:1px solid #eee;padding-top:0.8em}figure svg{max-width:100%;height:auto}\
figcaption{color:#555;font-size:0.92em}nav a{margin-right:1em}";

/// The page as HTML. Figures whose SVG is missing are listed as missing, not silently dropped.
pub fn render(dir: &Path, page: &Page) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(page.title),
        escape(page.title)
    );
    h.push_str("<nav><a href=\"#summary\">Summary</a>");
    if !page.figures.is_empty() {
        h.push_str("<a href=\"#figures\">Figures</a>");
    }
    for (k, (title, _)) in page.tables.iter().enumerate() {
        let _ = write!(h, "<a href=\"#table-{k}\">{}</a>", escape(title));
    }
    for (k, (title, _)) in page.texts.iter().enumerate() {
        let _ = write!(h, "<a href=\"#text-{k}\">{}</a>", escape(title));
    }
    h.push_str("</nav>\n<section id=\"summary\">\n");
    h.push_str(&markdown_to_html(page.summary_markdown));
    if !page.links.is_empty() {
        h.push_str("<ul>\n");
        for (label, href) in &page.links {
            let _ = writeln!(h, "<li><a href=\"{}\">{}</a></li>", escape(href), escape(label));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</section>\n");
    if !page.figures.is_empty() {
        h.push_str("<section id=\"figures\">\n<h2>Figures</h2>\n");
        for (stem, caption) in &page.figures {
            h.push_str("<figure>\n");
            match std::fs::read_to_string(dir.join(format!("{stem}.svg"))) {
                Ok(svg) => {
                    let start = svg.find("<svg").unwrap_or(0);
                    h.push_str(&svg[start..]);
                }
                Err(_) => {
                    let _ = write!(h, "<p>(figure {} missing)</p>", escape(stem));
                }
            }
            let _ = writeln!(
                h,
                "<figcaption>{} <a href=\"{s}.png\">PNG</a> · <a href=\"{s}.svg\">SVG</a></figcaption>\n</figure>",
                inline(caption),
                s = escape(stem)
            );
        }
        h.push_str("</section>\n");
    }
    for (k, (title, rows)) in page.tables.iter().enumerate() {
        let _ = write!(h, "<section id=\"table-{k}\">\n<h2>{}</h2>\n<table>\n", escape(title));
        for (key, value) in rows {
            let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", escape(key), escape(value).replace('\n', "<br>"));
        }
        h.push_str("</table>\n</section>\n");
    }
    for (k, (title, text)) in page.texts.iter().enumerate() {
        let _ = writeln!(
            h,
            "<section id=\"text-{k}\">\n<h2>{}</h2>\n<pre>{}</pre>\n</section>",
            escape(title),
            escape(text)
        );
    }
    h.push_str("</body>\n</html>\n");
    h
}

/// Writes `report.html` into `dir` (under a temporary name, then renamed).
pub fn write(dir: &Path, page: &Page) -> std::io::Result<std::path::PathBuf> {
    let path = dir.join("report.html");
    let tmp = dir.join("report.html.partial");
    std::fs::write(&tmp, render(dir, page))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_markdown_becomes_headings_tables_and_paragraphs() {
        let md = "# Rollout of fno (12 parameters)\n\nData `a<b>.nc`, samples 0..2.\n\n\
                  | metric | mean |\n|---|---|\n| max drift of ∫\\|u\\|² | 0.5 |\n\nBlow-up rate 0.000.\n## Cost\n";
        let h = markdown_to_html(md);
        assert!(h.contains("<h2>Rollout of fno (12 parameters)</h2>"), "{h}");
        assert!(h.contains("<p>Data <code>a&lt;b&gt;.nc</code>, samples 0..2.</p>"), "{h}");
        assert!(h.contains("<tr><th>metric</th><th>mean</th></tr>"), "{h}");
        assert!(h.contains("<tr><td>max drift of ∫|u|²</td><td>0.5</td></tr>"), "{h}");
        assert!(!h.contains("---"), "{h}");
        assert!(h.contains("<h3>Cost</h3>"), "{h}");
    }

    #[test]
    fn the_page_inlines_figures_and_escapes_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("error.svg"), "<?xml version=\"1.0\"?>\n<svg id=\"e\"></svg>").unwrap();
        let page = Page {
            title: "Rollout <fno>",
            summary_markdown: "# Summary\n",
            texts: vec![("Configuration".into(), "[model]\nkind = \"fno\" # <&>".into())],
            tables: vec![("Data".into(), vec![("title".into(), "a & b".into())])],
            figures: vec![("error".into(), "Error".into()), ("absent".into(), "Absent".into())],
            links: vec![("the fno report".into(), "reports/fno/report.html".into())],
        };
        let path = write(dir.path(), &page).unwrap();
        let h = std::fs::read_to_string(path).unwrap();
        assert!(h.starts_with("<!DOCTYPE html>") && h.contains("<title>Rollout &lt;fno&gt;</title>"));
        assert!(h.contains("<svg id=\"e\"></svg>") && !h.contains("<?xml"), "{h}");
        assert!(h.contains("(figure absent missing)"));
        assert!(h.contains("<li><a href=\"reports/fno/report.html\">the fno report</a></li>"));
        assert!(h.contains("kind = &quot;fno&quot; # &lt;&amp;&gt;") && h.contains("<td>a &amp; b</td>"));
        assert!(!h.contains("<script") && !h.contains("http"), "no scripts, no network");
        assert!(!dir.path().join("report.html.partial").exists());
    }
}
