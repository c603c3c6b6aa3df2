//! Civil dates for the trend periods: days since 1970-01-01 and back (Howard Hinnant's
//! algorithms, proleptic Gregorian), and ISO 8601 weeks (`2026-W49`: weeks start on Monday;
//! week 1 is the week with the year's first Thursday). Pure, no time zone: stored call times
//! are UTC.

/// `YYYY-MM-DD` at the start of `text` (e.g. an RFC 3339 time) as (year, month, day); None when
/// it is not a valid date.
pub(crate) fn parse_ymd(text: &str) -> Option<(i64, u32, u32)> {
    let b = text.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year: i64 = text.get(0..4)?.parse().ok()?;
    let month: u32 = text.get(5..7)?.parse().ok()?;
    let day: u32 = text.get(8..10)?.parse().ok()?;
    let valid = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
    valid.then_some((year, month, day))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `days` after 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `YYYY-MM-DD` of a day number.
pub(crate) fn format_days(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The ISO weekday of a day number: 1 (Monday) to 7 (Sunday). 1970-01-01 was a Thursday.
pub(crate) fn iso_weekday(days: i64) -> i64 {
    (days + 3).rem_euclid(7) + 1
}

/// The ISO week of a day number as (ISO year, week 1–53).
pub(crate) fn iso_week(days: i64) -> (i64, u32) {
    // The week belongs to the year of its Thursday.
    let thursday = days - iso_weekday(days) + 4;
    let (year, _, _) = civil_from_days(thursday);
    let ordinal = thursday - days_from_civil(year, 1, 1);
    (year, (ordinal / 7 + 1) as u32)
}

/// `2026-W49`: the ISO week of a day number.
pub(crate) fn iso_week_label(days: i64) -> String {
    let (year, week) = iso_week(days);
    format!("{year:04}-W{week:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip_and_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_days(days_from_civil(2024, 2, 29)), "2024-02-29");
        assert_eq!(parse_ymd("2026-12-03T09:00:00Z"), Some((2026, 12, 3)));
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "26-12-03",
            "2026/12/03",
            "",
        ] {
            assert_eq!(parse_ymd(bad), None, "{bad}");
        }
    }

    #[test]
    fn iso_weeks_of_known_dates() {
        let week = |y, m, d| iso_week_label(days_from_civil(y, m, d));
        assert_eq!(iso_weekday(days_from_civil(2026, 12, 7)), 1, "a Monday");
        assert_eq!(week(2026, 1, 1), "2026-W01"); // a Thursday
        assert_eq!(week(2026, 12, 3), "2026-W49");
        assert_eq!(week(2026, 12, 31), "2026-W53"); // 2026 starts on a Thursday: 53 weeks
        assert_eq!(week(2027, 1, 3), "2026-W53"); // Sunday of that week
        assert_eq!(week(2027, 1, 4), "2027-W01");
        assert_eq!(week(2024, 12, 30), "2025-W01"); // a Monday in the next ISO year
        assert_eq!(week(2021, 1, 3), "2020-W53");
        assert_eq!(week(2021, 1, 4), "2021-W01");
        // Every Monday starts a new week, and the six days after it share its week.
        let monday = days_from_civil(2025, 12, 29);
        for d in 0..7 {
            assert_eq!(iso_week_label(monday + d), "2026-W01");
        }
    }
}
