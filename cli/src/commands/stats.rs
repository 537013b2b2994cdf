//! `stats`: daily deliveries, bounces and complaints from the counter items, the bounce and
//! complaint rates next to SES's review and pause thresholds, drawn as small terminal charts and
//! optionally as a self-contained HTML page.
//!
//! The counters come from one paginated `Query` (`pk = STATS`, sort key between the first and
//! last day). Rendering is pure: the same counters and `--today` give the same text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;

use anyhow::Context as _;
use chrono::{Duration, NaiveDate};
use serde_json::json;
use suppression_store::{CounterValues, DailyCounters};

use super::{Ctx, Status};
use crate::args::{Format, StatsArgs};
use crate::aws;
use crate::output::{Paint, Style, Table};

/// SES puts an account under review at a 5 % bounce rate...
const BOUNCE_REVIEW: f64 = 0.05;
/// ...and may pause sending at 10 %.
const BOUNCE_PAUSE: f64 = 0.10;
/// Review at a 0.1 % complaint rate...
const COMPLAINT_REVIEW: f64 = 0.001;
/// ...pause at 0.5 %.
const COMPLAINT_PAUSE: f64 = 0.005;
/// Cells of a terminal bar chart.
const CHART_WIDTH: usize = 40;

/// The counters of the requested days, summed over the selected identities.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// First day shown.
    pub from: NaiveDate,
    /// Last day shown.
    pub to: NaiveDate,
    /// The identities asked for; empty for all.
    pub wanted: Vec<String>,
    /// The identities with counters in the range (after the filter).
    pub identities: BTreeSet<String>,
    /// One entry per day, zeros included, oldest first.
    pub days: Vec<(NaiveDate, Tally)>,
    /// Sum over all days (its base is the sum of the days' bases).
    pub total: Tally,
}

impl Report {
    /// Sums `counters` per day for the identities in `wanted` (all when empty).
    pub fn new(
        from: NaiveDate,
        to: NaiveDate,
        wanted: &[String],
        counters: &[DailyCounters],
    ) -> Self {
        let mut per_day: BTreeMap<NaiveDate, CounterValues> = BTreeMap::new();
        let mut identities = BTreeSet::new();
        for c in counters {
            if c.day < from || c.day > to || !(wanted.is_empty() || wanted.contains(&c.identity)) {
                continue;
            }
            identities.insert(c.identity.clone());
            per_day.entry(c.day).or_default().add(&c.values);
        }
        let mut days = Vec::new();
        let mut total = Tally::default();
        let mut day = from;
        while day <= to {
            let tally = Tally::day(per_day.get(&day).copied().unwrap_or_default());
            total.values.add(&tally.values);
            total.base += tally.base;
            days.push((day, tally));
            day += Duration::days(1);
        }
        Self { from, to, wanted: wanted.to_vec(), identities, days, total }
    }
}

/// The messages a day's rates are taken over: counted sends, or, on days whose configuration
/// set did not publish Send events, the messages with a known outcome.
pub fn base(v: &CounterValues) -> u64 {
    if v.sends > 0 { v.sends } else { v.deliveries + v.hard_bounces + v.soft_bounces }
}

/// Counters with the number of messages their rates are taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// The counters.
    pub values: CounterValues,
    /// The base of the rates: [`base`] of a day, or the sum of the days' bases.
    pub base: u64,
}

impl Tally {
    fn day(values: CounterValues) -> Self {
        Self { values, base: base(&values) }
    }
}

/// Hard bounces per message: SES counts only hard bounces toward the bounce rate.
fn bounce_rate(t: &Tally) -> Option<f64> {
    (t.base > 0).then(|| t.values.hard_bounces as f64 / t.base as f64)
}

/// Complaints per message.
fn complaint_rate(t: &Tally) -> Option<f64> {
    (t.base > 0).then(|| t.values.complaints as f64 / t.base as f64)
}

/// One of the two rates with its thresholds.
#[derive(Debug, Clone, Copy)]
struct Metric {
    name: &'static str,
    rate: fn(&Tally) -> Option<f64>,
    review: f64,
    pause: f64,
    decimals: usize,
}

const BOUNCE: Metric = Metric {
    name: "bounce rate",
    rate: bounce_rate,
    review: BOUNCE_REVIEW,
    pause: BOUNCE_PAUSE,
    decimals: 2,
};
const COMPLAINT: Metric = Metric {
    name: "complaint rate",
    rate: complaint_rate,
    review: COMPLAINT_REVIEW,
    pause: COMPLAINT_PAUSE,
    decimals: 3,
};

impl Metric {
    fn percent(&self, rate: Option<f64>) -> String {
        match rate {
            Some(r) => format!("{:.*}%", self.decimals, r * 100.0),
            None => "-".to_owned(),
        }
    }

    fn verdict(&self, rate: Option<f64>) -> &'static str {
        match rate {
            Some(r) if r >= self.pause => "pause",
            Some(r) if r >= self.review => "review",
            Some(_) => "ok",
            None => "no data",
        }
    }

    fn paint(&self, text: &str, rate: Option<f64>, style: &Style) -> String {
        match self.verdict(rate) {
            "pause" => style.paint(text, Paint::Red),
            "review" => style.paint(text, Paint::Yellow),
            _ => text.to_owned(),
        }
    }

    /// Top of the chart scale: a little above the pause threshold, or the largest rate.
    fn scale(&self, report: &Report) -> f64 {
        let max = report.days.iter().filter_map(|(_, v)| (self.rate)(v)).fold(0.0, f64::max);
        (self.pause * 1.2).max(max)
    }
}

fn threshold(value: f64) -> String {
    let text = format!("{:.3}", value * 100.0);
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// A bar of `fraction` of [`CHART_WIDTH`] cells in eighths, with the review (`¦`) and pause
/// (`|`) marks where the bar does not reach.
fn bar(fraction: f64, review: usize, pause: usize) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (fraction.clamp(0.0, 1.0) * (CHART_WIDTH * 8) as f64).round() as usize;
    let (full, part) = (eighths / 8, eighths % 8);
    let mut out = String::new();
    for cell in 0..CHART_WIDTH {
        let c = if cell < full {
            '█'
        } else if cell == full && part > 0 {
            PARTS[part]
        } else if cell == pause {
            '|'
        } else if cell == review {
            '¦'
        } else {
            ' '
        };
        out.push(c);
    }
    out
}

fn mark(value: f64, scale: f64) -> usize {
    ((value / scale) * CHART_WIDTH as f64).round().clamp(0.0, (CHART_WIDTH - 1) as f64) as usize
}

/// The terminal report: table, verdicts and two charts.
pub fn render_text(report: &Report, style: &Style) -> String {
    let mut out = String::new();
    let identities =
        if report.wanted.is_empty() { "all".to_owned() } else { report.wanted.join(", ") };
    let _ = writeln!(
        out,
        "{}",
        style.paint(
            &format!(
                "Sending statistics {} to {} ({} days, UTC), identities: {identities}",
                report.from,
                report.to,
                report.days.len()
            ),
            Paint::Bold
        )
    );
    let _ = writeln!(out);
    let header =
        ["DAY", "SENDS", "DELIVERIES", "HARD", "SOFT", "COMPLAINTS", "BOUNCE", "COMPLAINT"];
    let mut table = Table::new(&header, style).align_right(&[1, 2, 3, 4, 5, 6, 7]);
    let row = |label: String, t: &Tally| {
        let (b, c) = (bounce_rate(t), complaint_rate(t));
        let v = &t.values;
        vec![
            label,
            v.sends.to_string(),
            v.deliveries.to_string(),
            v.hard_bounces.to_string(),
            v.soft_bounces.to_string(),
            v.complaints.to_string(),
            BOUNCE.paint(&BOUNCE.percent(b), b, style),
            COMPLAINT.paint(&COMPLAINT.percent(c), c, style),
        ]
    };
    for (day, values) in &report.days {
        table.row(row(day.to_string(), values));
    }
    table.row(row("total".to_owned(), &report.total));
    let mut buffer = Vec::new();
    let _ = table.write(&mut buffer);
    out.push_str(&String::from_utf8_lossy(&buffer));
    let _ = writeln!(out);

    let mut verdicts = Table::new(&["RATE", "PERIOD", "REVIEW AT", "PAUSE AT", "STATUS"], style)
        .align_right(&[1, 2, 3]);
    for metric in [BOUNCE, COMPLAINT] {
        let rate = (metric.rate)(&report.total);
        let verdict = metric.verdict(rate);
        let painted = match verdict {
            "ok" => style.paint(verdict, Paint::Green),
            _ => metric.paint(verdict, rate, style),
        };
        verdicts.row(vec![
            metric.name.to_owned(),
            metric.percent(rate),
            threshold(metric.review),
            threshold(metric.pause),
            painted,
        ]);
    }
    buffer.clear();
    let _ = verdicts.write(&mut buffer);
    out.push_str(&String::from_utf8_lossy(&buffer));

    for metric in [BOUNCE, COMPLAINT] {
        let scale = metric.scale(report);
        let (review, pause) = (mark(metric.review, scale), mark(metric.pause, scale));
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{} per day (0 to {}; ¦ review {}, | pause {})",
            style.paint(metric.name, Paint::Bold),
            threshold(scale),
            threshold(metric.review),
            threshold(metric.pause)
        );
        for (day, values) in &report.days {
            let rate = (metric.rate)(values);
            let drawn = bar(rate.unwrap_or(0.0) / scale, review, pause);
            let _ = writeln!(
                out,
                "{day}  {}  {}",
                metric.paint(&drawn, rate, style),
                metric.percent(rate)
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{}",
        style.paint(
            "Rates are hard bounces and complaints per send; days without counted sends\n\
             use delivered plus bounced messages.",
            Paint::Dim
        )
    );
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An SVG bar chart of one value per day, with optional dashed threshold lines.
fn svg_chart(
    title: &str,
    days: &[(NaiveDate, Vec<(f64, &'static str)>)],
    scale: f64,
    lines: &[(f64, String)],
    label: &dyn Fn(f64) -> String,
) -> String {
    let (width, height, left, bottom, top) = (760.0, 220.0, 60.0, 30.0, 24.0);
    let plot_w = width - left - 10.0;
    let plot_h = height - bottom - top;
    let slot = plot_w / days.len().max(1) as f64;
    let y = |v: f64| top + plot_h - (v / scale).min(1.0) * plot_h;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<figure><figcaption>{}</figcaption><svg viewBox=\"0 0 {width} {height}\" \
         role=\"img\" aria-label=\"{}\">",
        escape(title),
        escape(title)
    );
    for step in 0..=4 {
        let v = scale * f64::from(step) / 4.0;
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            width - 10.0,
            left - 6.0,
            y(v) + 4.0,
            escape(&label(v)),
            y = y(v)
        );
    }
    for (i, (day, stack)) in days.iter().enumerate() {
        let x = left + slot * i as f64 + slot * 0.15;
        let mut base = 0.0;
        for (value, class) in stack {
            let (y0, y1) = (y(base), y(base + value));
            let _ = write!(
                svg,
                "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y1:.1}\" width=\"{:.1}\" \
                 height=\"{:.1}\"><title>{day}: {}</title></rect>",
                slot * 0.7,
                (y0 - y1).max(0.0),
                escape(&label(*value))
            );
            base += value;
        }
        if days.len() <= 16 || i % (days.len() / 8).max(1) == 0 {
            let _ = write!(
                svg,
                "<text class=\"axis\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x + slot * 0.35,
                height - 10.0,
                day.format("%m-%d")
            );
        }
    }
    for (value, name) in lines {
        let _ = write!(
            svg,
            "<line class=\"limit\" x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"limit-label\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            width - 10.0,
            width - 12.0,
            y(*value) - 4.0,
            escape(name),
            y = y(*value)
        );
    }
    svg.push_str("</svg></figure>\n");
    svg
}

/// The self-contained HTML page: the same table, verdicts and charts, no scripts, no external
/// resources.
pub fn render_html(report: &Report) -> String {
    let identities =
        if report.wanted.is_empty() { "all".to_owned() } else { report.wanted.join(", ") };
    let title = format!("Sending statistics {} to {}", report.from, report.to);
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:2rem auto;max-width:800px;color:#222}}\
         table{{border-collapse:collapse;font-variant-numeric:tabular-nums}}\
         td,th{{padding:2px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}\
         tr.total{{font-weight:bold;border-top:1px solid #999}}\
         .ok{{color:#1a7f37}}.review{{color:#9a6700}}.pause{{color:#cf222e}}\
         figure{{margin:1.5rem 0}}figcaption{{font-weight:bold}}svg{{width:100%;height:auto}}\
         .grid{{stroke:#eee}}.axis{{font-size:11px;fill:#666}}\
         .delivered{{fill:#4c9f70}}.soft{{fill:#e3a23b}}.hard{{fill:#cf4b4b}}.rate{{fill:#5b7fc7}}\
         .limit{{stroke:#cf222e;stroke-dasharray:6 4}}.limit-label{{font-size:11px;fill:#cf222e}}\
         </style></head><body>\n<h1>{title}</h1>\n<p>{} days (UTC), identities: {}</p>\n",
        report.days.len(),
        escape(&identities)
    );
    page.push_str("<h2>Rates over the period</h2>\n<table><tr><th>rate</th><th>period</th>");
    page.push_str("<th>review at</th><th>pause at</th><th>status</th></tr>\n");
    for metric in [BOUNCE, COMPLAINT] {
        let rate = (metric.rate)(&report.total);
        let verdict = metric.verdict(rate);
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{verdict}</td></tr>",
            metric.name,
            metric.percent(rate),
            threshold(metric.review),
            threshold(metric.pause),
            verdict.replace(' ', "-")
        );
    }
    page.push_str("</table>\n");

    let volume: Vec<_> = report
        .days
        .iter()
        .map(|(d, t)| {
            let v = &t.values;
            let parts = vec![
                (v.deliveries as f64, "delivered"),
                (v.soft_bounces as f64, "soft"),
                (v.hard_bounces as f64, "hard"),
            ];
            (*d, parts)
        })
        .collect();
    let most = volume.iter().map(|(_, p)| p.iter().map(|x| x.0).sum::<f64>()).fold(1.0, f64::max);
    let count = |v: f64| format!("{v:.0}");
    page.push_str(&svg_chart(
        "Messages per day: delivered (green), soft bounces (amber), hard bounces (red)",
        &volume,
        most,
        &[],
        &count,
    ));
    for metric in [BOUNCE, COMPLAINT] {
        let scale = metric.scale(report);
        let days: Vec<_> = report
            .days
            .iter()
            .map(|(d, v)| (*d, vec![((metric.rate)(v).unwrap_or(0.0), "rate")]))
            .collect();
        let lines = [
            (metric.review, format!("review {}", threshold(metric.review))),
            (metric.pause, format!("pause {}", threshold(metric.pause))),
        ];
        let percent = move |v: f64| format!("{:.*}%", metric.decimals, v * 100.0);
        page.push_str(&svg_chart(
            &format!("{} per day", metric.name),
            &days,
            scale,
            &lines,
            &percent,
        ));
    }

    page.push_str("<h2>Per day</h2>\n<table><tr><th>day</th><th>sends</th><th>deliveries</th>");
    page.push_str("<th>hard</th><th>soft</th><th>complaints</th><th>bounce</th>");
    page.push_str("<th>complaint</th></tr>\n");
    let rows = report.days.iter().map(|(d, v)| (d.to_string(), v, ""));
    for (label, t, class) in rows.chain([("total".to_owned(), &report.total, " class=\"total\"")]) {
        let (b, c) = (bounce_rate(t), complaint_rate(t));
        let v = &t.values;
        let _ = writeln!(
            page,
            "<tr{class}><td>{label}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"{}\">{}</td><td class=\"{}\">{}</td></tr>",
            v.sends,
            v.deliveries,
            v.hard_bounces,
            v.soft_bounces,
            v.complaints,
            BOUNCE.verdict(b).replace(' ', "-"),
            BOUNCE.percent(b),
            COMPLAINT.verdict(c).replace(' ', "-"),
            COMPLAINT.percent(c)
        );
    }
    page.push_str(
        "</table>\n<p>Rates are hard bounces and complaints per send; days without counted \
         sends use delivered plus bounced messages. SES reviews an account at a 5% bounce or \
         0.1% complaint rate and may pause it at 10% or 0.5%.</p>\n</body></html>\n",
    );
    page
}

/// Prints the report for the last `args.days` days; exit 1 when no counters match.
///
/// Fails when the table cannot be read or the HTML file cannot be written.
pub async fn run(ctx: &Ctx, args: &StatsArgs) -> anyhow::Result<Status> {
    let to = args.today.unwrap_or_else(|| ctx.now.date_naive());
    let from = to - Duration::days(i64::from(args.days) - 1);
    let store = aws::store(&ctx.global).await?;
    let counters = store.daily_counters(from, to).await?;
    let report = Report::new(from, to, &args.identity, &counters);
    if report.identities.is_empty() {
        eprintln!("no counters between {from} and {to} for the identities asked for");
        return Ok(Status::NothingMatched);
    }
    let mut out = std::io::stdout().lock();
    match ctx.format {
        Format::Json => {
            for (day, t) in &report.days {
                let v = &t.values;
                let line = json!({
                    "day": day.to_string(),
                    "sends": v.sends,
                    "deliveries": v.deliveries,
                    "hard_bounces": v.hard_bounces,
                    "soft_bounces": v.soft_bounces,
                    "complaints": v.complaints,
                    "bounce_rate": bounce_rate(t),
                    "complaint_rate": complaint_rate(t),
                });
                writeln!(out, "{line}")?;
            }
        }
        Format::Csv => {
            writeln!(out, "day,sends,deliveries,hard_bounces,soft_bounces,complaints")?;
            for (day, t) in &report.days {
                let v = &t.values;
                writeln!(
                    out,
                    "{day},{},{},{},{},{}",
                    v.sends, v.deliveries, v.hard_bounces, v.soft_bounces, v.complaints
                )?;
            }
        }
        Format::Human => out.write_all(render_text(&report, &ctx.style).as_bytes())?,
    }
    if let Some(path) = &args.html {
        std::fs::write(path, render_html(&report))
            .with_context(|| format!("could not write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(Status::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn counters(d: u32, identity: &str, sends: u64, hard: u64, complaints: u64) -> DailyCounters {
        DailyCounters {
            day: day(d),
            identity: identity.to_owned(),
            values: CounterValues {
                sends,
                deliveries: sends - hard,
                hard_bounces: hard,
                soft_bounces: 0,
                complaints,
            },
        }
    }

    #[test]
    fn reports_sum_identities_per_day_and_fill_missing_days_with_zeros() {
        let all = [counters(1, "a.example", 100, 2, 0), counters(1, "b.example", 100, 4, 1)];
        let report = Report::new(day(1), day(3), &[], &all);
        assert_eq!(report.days.len(), 3);
        assert_eq!(report.days[0].1.values.hard_bounces, 6);
        assert_eq!(report.days[2].1, Tally::default());
        assert_eq!(bounce_rate(&report.total), Some(0.03));

        let only_b = Report::new(day(1), day(3), &["b.example".to_owned()], &all);
        assert_eq!(only_b.total.values.sends, 100);
        assert_eq!(only_b.identities.len(), 1);
    }

    #[test]
    fn verdicts_follow_the_ses_thresholds() {
        assert_eq!(BOUNCE.verdict(Some(0.049)), "ok");
        assert_eq!(BOUNCE.verdict(Some(0.05)), "review");
        assert_eq!(BOUNCE.verdict(Some(0.10)), "pause");
        assert_eq!(COMPLAINT.verdict(Some(0.002)), "review");
        assert_eq!(COMPLAINT.verdict(None), "no data");
    }

    #[test]
    fn rates_fall_back_to_known_outcomes_without_send_events() {
        let v = CounterValues {
            deliveries: 96,
            hard_bounces: 2,
            soft_bounces: 2,
            ..Default::default()
        };
        assert_eq!(bounce_rate(&Tally::day(v)), Some(0.02));
        assert_eq!(complaint_rate(&Tally::default()), None);
    }

    #[test]
    fn period_rates_are_taken_over_the_sum_of_the_daily_bases() {
        let with_sends = counters(1, "a.example", 100, 1, 0);
        let mut without = counters(2, "a.example", 100, 1, 0);
        without.values.sends = 0;
        let report = Report::new(day(1), day(2), &[], &[with_sends, without]);
        assert_eq!(report.total.base, 200);
        assert_eq!(bounce_rate(&report.total), Some(0.01));
    }

    #[test]
    fn bars_show_thresholds_beyond_their_end() {
        let drawn = bar(0.25, 20, 30);
        assert_eq!(drawn.chars().count(), CHART_WIDTH);
        assert!(drawn.starts_with("██████████ "));
        assert_eq!(drawn.chars().nth(20), Some('¦'));
        assert_eq!(drawn.chars().nth(30), Some('|'));
    }
}
