//! Durations, one syntax everywhere: every flag and every scenario step that takes a length of time parses it
//! here. The syntax is humantime's: a number (a fraction is fine) with a unit, `ms`, `s`, `m`, `h` or `d`,
//! and several of them add up (`1m30s`, `1h 30m`).
//!
//! One rule decides what a bare number means, so that no invocation silently changes meaning: where a bare
//! number always meant seconds (`--timeout`, `--duration`, `--grace`) it still does ([`Bare::Seconds`]);
//! where it meant milliseconds (`watch --interval`, `link --delay/--jitter`, `disk --slow-fsync`, a
//! scenario's `wait N` and `within N`) it is refused with the fix ([`Bare::Refused`]), because reading it as
//! seconds would make `--delay 200` a thousand times longer than it was.
//!
//! ```
//! use std::time::Duration;
//! use zkdev::model::span::{parse, Bare};
//!
//! assert_eq!(parse("1m30s", Bare::Refused), Ok(Duration::from_secs(90)));
//! assert_eq!(parse("20", Bare::Seconds), Ok(Duration::from_secs(20)));
//! assert!(parse("200", Bare::Refused).unwrap_err().contains("200ms"));
//! ```

use std::time::Duration;

/// What a number without a unit means where it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bare {
    /// A bare number is seconds (it always was there).
    Seconds,
    /// A bare number is refused: a unit is required (a bare number used to mean milliseconds there).
    Refused,
}

/// The longest length of time zkdev takes anywhere: a day.
pub const MAX: Duration = Duration::from_secs(86_400);

/// `text` as a length of time, or what is wrong with it (a sentence without the flag's name: the caller
/// says where the text came from).
pub fn parse(text: &str, bare: Bare) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("give a duration such as 500ms, 20s, 2m or 1h".into());
    }
    if let Ok(n) = t.parse::<f64>() {
        return match bare {
            Bare::Seconds => within_max(n, 1.0, text),
            Bare::Refused => Err(format!(
                "`{t}` has no unit: write `{t}ms` or `{t}s` (a bare number is not taken here, it used to mean milliseconds)"
            )),
        };
    }
    let mut total = 0.0_f64;
    let mut rest = t;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let unit_len = rest[num_len..]
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len() - num_len);
        let (num, unit) = (&rest[..num_len], &rest[num_len..num_len + unit_len]);
        let factor = match unit {
            "ms" | "msec" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86_400.0,
            _ => 0.0,
        };
        let value = num.parse::<f64>().ok().filter(|v| v.is_finite());
        match value {
            Some(v) if factor > 0.0 => total += v * factor,
            _ => {
                return Err(format!(
                    "`{t}` is not a duration: write it as 500ms, 20s, 2m, 1h or 1m30s"
                ))
            }
        }
        rest = rest[num_len + unit_len..].trim_start();
    }
    within_max(total, 1.0, text)
}

fn within_max(value: f64, factor: f64, text: &str) -> Result<Duration, String> {
    let secs = value * factor;
    if secs.is_finite() && secs >= 0.0 && secs <= MAX.as_secs_f64() {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(format!(
            "`{}` is out of range: give a duration from 0s to 1d",
            text.trim()
        ))
    }
}

/// A length of time as a person writes it, in the same syntax [`parse`] reads: `250ms`, `1.5s`, `2m`,
/// `1h30m`.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        let s = d.as_secs_f64();
        return if ms % 1000 == 0 {
            format!("{}s", ms / 1000)
        } else {
            format!("{s:.1}s")
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Seconds with two decimals, as measurements are shown (`1.25 s`).
pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_sums() {
        assert_eq!(parse("500ms", Bare::Refused), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1.5s", Bare::Refused), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2m", Bare::Refused), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h", Bare::Refused), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1m30s", Bare::Refused), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h 30m", Bare::Refused), Ok(Duration::from_secs(5400)));
        assert_eq!(parse(" 20s ", Bare::Seconds), Ok(Duration::from_secs(20)));
    }

    #[test]
    fn a_bare_number_is_seconds_or_refused_never_milliseconds() {
        assert_eq!(parse("20", Bare::Seconds), Ok(Duration::from_secs(20)));
        assert_eq!(parse("0.5", Bare::Seconds), Ok(Duration::from_millis(500)));
        let e = parse("200", Bare::Refused).unwrap_err();
        assert!(e.contains("`200ms`") && e.contains("`200s`"), "{e}");
    }

    #[test]
    fn nonsense_and_out_of_range_are_refused() {
        for bad in [
            "",
            "fast",
            "10 parsecs",
            "5x",
            "-1s",
            "2d1s",
            "s",
            "1.2.3s",
            "NaN",
            "inf",
        ] {
            assert!(parse(bad, Bare::Seconds).is_err(), "{bad} was taken");
        }
        assert!(parse("1d", Bare::Seconds).is_ok());
    }

    #[test]
    fn format_reads_back() {
        for d in [250, 1000, 1500, 59_000, 60_000, 90_000, 3_600_000, 5_400_000, 5_401_000] {
            let d = Duration::from_millis(d);
            assert_eq!(parse(&format(d), Bare::Refused), Ok(d), "{}", format(d));
        }
    }
}
