//! A small RFC 4180 reader for import files: comma-separated, `"`-quoted fields with `""` for a
//! quote, quoted line breaks allowed, CRLF or LF, a UTF-8 byte-order mark ignored. Every row
//! keeps the line it starts on, so that broken rows can be reported by line number.

/// One row of a CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Line number (1-based) the row starts on.
    pub line: usize,
    /// The fields, unquoted.
    pub fields: Vec<String>,
}

/// A row that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// Line number (1-based) the row starts on.
    pub line: usize,
    /// What is wrong, without the row's content.
    pub problem: &'static str,
}

/// Splits a whole file into rows; blank lines are skipped. A broken row does not stop the
/// reader: it resumes at the next line.
pub fn read(text: &str) -> Vec<Result<Row, BadRow>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut problem = None;
        loop {
            match chars.next() {
                None => {
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some('\n') => {
                    line += 1;
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some('\r') if chars.peek() == Some(&'\n') => {}
                Some(',') => fields.push(std::mem::take(&mut field)),
                Some('"') if field.trim().is_empty() => {
                    field.clear();
                    if let Err(p) = quoted(&mut chars, &mut field, &mut line) {
                        problem = Some(p);
                        skip_line(&mut chars, &mut line);
                        break;
                    }
                }
                Some(c) => field.push(c),
            }
        }
        match problem {
            Some(problem) => rows.push(Err(BadRow { line: start, problem })),
            None if fields.iter().all(|f| f.trim().is_empty()) => {}
            None => rows.push(Ok(Row { line: start, fields })),
        }
    }
    rows
}

/// Reads a quoted field after its opening quote, up to the next separator (not consumed).
fn quoted(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    field: &mut String,
    line: &mut usize,
) -> Result<(), &'static str> {
    loop {
        match chars.next() {
            None => return Err("a quoted field is not closed"),
            Some('"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            Some('"') => break,
            Some(c) => {
                if c == '\n' {
                    *line += 1;
                }
                field.push(c);
            }
        }
    }
    while let Some(&c) = chars.peek() {
        match c {
            ',' | '\n' | '\r' => return Ok(()),
            c if c.is_whitespace() => {
                chars.next();
            }
            _ => return Err("text follows a closing quote"),
        }
    }
    Ok(())
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, line: &mut usize) {
    for c in chars.by_ref() {
        if c == '\n' {
            *line += 1;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: usize, fields: &[&str]) -> Result<Row, BadRow> {
        Ok(Row { line, fields: fields.iter().map(|f| (*f).to_owned()).collect() })
    }

    #[test]
    fn reads_quotes_crlf_blank_lines_and_multiline_fields() {
        let text = "\u{feff}address,note\r\na@example.com,\"x, \"\"y\"\"\"\r\n\n\
                    b@example.com,\"two\nlines\"\nc@example.com\n";
        assert_eq!(
            read(text),
            vec![
                ok(1, &["address", "note"]),
                ok(2, &["a@example.com", "x, \"y\""]),
                ok(4, &["b@example.com", "two\nlines"]),
                ok(6, &["c@example.com"]),
            ]
        );
    }

    #[test]
    fn broken_rows_are_reported_by_line_and_reading_goes_on() {
        let text = "a@example.com\n\"bad\"x,1\nb@example.com\n\"open";
        assert_eq!(
            read(text),
            vec![
                ok(1, &["a@example.com"]),
                Err(BadRow { line: 2, problem: "text follows a closing quote" }),
                ok(3, &["b@example.com"]),
                Err(BadRow { line: 4, problem: "a quoted field is not closed" }),
            ]
        );
    }
}
