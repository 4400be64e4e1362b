//! Column formatting as Nomad's CLI does it (ryanuber/columnize): rows are `|`-separated
//! fields, every column but the last is left-aligned and padded to its widest cell, columns
//! are glued with two spaces (or ` = ` for key/value blocks), and empty cells become `<none>`.

fn cells(line: &str, empty: Option<&str>) -> Vec<String> {
    line.split('|')
        .map(|f| {
            let v = f.trim();
            match empty {
                Some(e) if v.is_empty() => e.to_string(),
                _ => v.to_string(),
            }
        })
        .collect()
}

fn format(lines: &[String], glue: &str, empty: Option<&str>) -> String {
    let rows: Vec<Vec<String>> = lines.iter().map(|l| cells(l, empty)).collect();
    let mut widths: Vec<usize> = vec![];
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            let w = c.chars().count();
            if widths.len() <= i {
                widths.push(w);
            } else if widths[i] < w {
                widths[i] = w;
            }
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            if i + 1 == row.len() {
                out.push_str(c);
            } else {
                out.push_str(c);
                let pad = widths[i].saturating_sub(c.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(glue);
            }
        }
        out.push('\n');
    }
    if out.ends_with('\n') {
        out.pop();
    }
    out
}

/// A table: `ID|Name` rows, two-space gutters, `<none>` for empty cells.
pub fn format_list<S: AsRef<str>>(lines: &[S]) -> String {
    let lines: Vec<String> = lines.iter().map(|s| s.as_ref().to_string()).collect();
    format(&lines, "  ", Some("<none>"))
}

/// A table that keeps empty cells empty (for multi-line cells such as task resources).
pub fn format_list_with_spaces<S: AsRef<str>>(lines: &[S]) -> String {
    let lines: Vec<String> = lines.iter().map(|s| s.as_ref().to_string()).collect();
    format(&lines, "  ", None)
}

/// A key/value block: `ID = ...`, keys padded so the `=` line up.
pub fn format_kv<S: AsRef<str>>(lines: &[S]) -> String {
    let lines: Vec<String> = lines.iter().map(|s| s.as_ref().to_string()).collect();
    format(&lines, " = ", Some("<none>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_with_two_spaces_and_no_trailing_padding() {
        let out = format_list(&["ID|Type|Priority", "example|service|50", "b|batch|100"]);
        assert_eq!(
            out,
            "ID       Type     Priority\nexample  service  50\nb        batch    100"
        );
    }

    #[test]
    fn empty_cells_become_none() {
        let out = format_list(&["A|B|C", "x||z"]);
        assert_eq!(out, "A  B       C\nx  <none>  z");
        let out = format_list_with_spaces(&["A|B|C", "x||z"]);
        assert_eq!(out, "A  B  C\nx     z");
    }

    #[test]
    fn key_value_blocks() {
        let out = format_kv(&["ID|example", "Submit Date|2026", "Datacenters|"]);
        assert_eq!(
            out,
            "ID          = example\nSubmit Date = 2026\nDatacenters = <none>"
        );
    }

    #[test]
    fn short_rows_do_not_pad() {
        let out = format_list(&["Alpha|B", "C"]);
        assert_eq!(out, "Alpha  B\nC");
    }
}
