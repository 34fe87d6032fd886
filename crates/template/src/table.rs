//! Docker's list formats: one rendered line per row, and the `table` directive (a header row,
//! columns aligned by Go's `text/tabwriter` with Docker's settings).

use crate::parse::{Node, Operand, Pipe, Term};
use crate::{Error, Methods, Template};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Docker's `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
const MIN_WIDTH: usize = 10;
const PADDING: usize = 3;

/// A `--format` for a list command: rows rendered one per line, aligned under a header when
/// the format starts with `table`.
pub struct Table {
    template: Template,
    header: Option<String>,
    out: String,
}

impl Table {
    /// Parses `format` as Docker does: a leading `table` asks for a header and alignment, the
    /// bare name `json` means `{{json .}}`, and `\t`, `\n` written literally are a tab and a
    /// newline. `headers` maps a field (`ID`) to its column title (`CONTAINER ID`); a field
    /// not in it is titled with its name in upper case.
    pub fn new(format: &str, headers: &HashMap<&str, &str>) -> Result<Table, Error> {
        let (is_table, body) = match format.strip_prefix("table") {
            Some(rest) => (true, rest),
            None => (false, format),
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let body = if body == "json" {
            "{{json .}}".to_string()
        } else {
            body
        };
        let template = Template::parse(&body)?;
        let header = if is_table {
            Some(template.render_header(&header_object(&template, headers)))
        } else {
            None
        };
        Ok(Table {
            template,
            header,
            out: String::new(),
        })
    }

    /// Renders one row.
    pub fn add(&mut self, row: &Value) -> Result<(), Error> {
        self.add_with(row, &Methods::new())
    }

    /// Renders one row with `methods` as its methods (`{{.Label "k"}}`).
    pub fn add_with(&mut self, row: &Value, methods: &Methods) -> Result<(), Error> {
        self.out.push_str(&self.template.render_with(row, methods)?);
        self.out.push('\n');
        Ok(())
    }

    /// The output: the rows, or for `table` the header and rows aligned in columns.
    pub fn finish(self) -> String {
        match self.header {
            None => self.out,
            Some(header) => tabwrite(&format!("{header}\n{}", self.out)),
        }
    }
}

/// The object the header row renders over: every field the template reads from `.` or `$`,
/// mapped to its title.
fn header_object(template: &Template, headers: &HashMap<&str, &str>) -> Value {
    let mut names = Vec::new();
    collect_fields(&template.nodes, &mut names);
    let map: Map<String, Value> = names
        .into_iter()
        .map(|n| {
            let title = headers
                .get(n.as_str())
                .map(|h| h.to_string())
                .unwrap_or_else(|| n.to_uppercase());
            (n, Value::String(title))
        })
        .collect();
    Value::Object(map)
}

fn collect_fields(nodes: &[Node], names: &mut Vec<String>) {
    for node in nodes {
        match node {
            Node::Action(p) => pipe_fields(p, names),
            Node::If(b) | Node::With(b) | Node::Range(b) => {
                pipe_fields(&b.pipe, names);
                collect_fields(&b.then, names);
                collect_fields(&b.otherwise, names);
            }
            Node::Text(_) | Node::Break | Node::Continue => {}
        }
    }
}

fn pipe_fields(pipe: &Pipe, names: &mut Vec<String>) {
    for op in pipe.cmds.iter().flat_map(|c| &c.args) {
        operand_fields(op, names);
    }
}

fn operand_fields(op: &Operand, names: &mut Vec<String>) {
    match &op.term {
        Term::Dot => names.extend(op.fields.first().cloned()),
        Term::Var(v) if v == "$" => names.extend(op.fields.first().cloned()),
        Term::Pipe(p) => pipe_fields(p, names),
        _ => {}
    }
}

/// Go's `text/tabwriter` with Docker's settings (minimum width 10, padding 3, spaces): cells
/// end at tabs, a column's width is set by the run of consecutive lines that have it, and a
/// line's last cell is not aligned.
pub fn tabwrite(text: &str) -> String {
    tabwrite_min(text, MIN_WIDTH)
}

/// [`tabwrite`] with another minimum column width (`docker top` uses 20).
pub fn tabwrite_min(text: &str, min_width: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut writer = TabWriter {
        lines: &lines,
        min_width,
        widths: Vec::new(),
        out: String::new(),
    };
    writer.format(0, lines.len());
    writer.out
}

struct TabWriter<'l> {
    lines: &'l [Vec<&'l str>],
    min_width: usize,
    widths: Vec<usize>,
    out: String,
}

impl TabWriter<'_> {
    /// Go's `Writer.format`: the column blocks of lines `line0..line1` right of the widths
    /// known so far.
    fn format(&mut self, mut line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(line0, this);
            line0 = this;
            let mut width = self.min_width;
            while this < line1 && column + 1 < self.lines[this].len() {
                width = width.max(self.lines[this][column].chars().count() + PADDING);
                this += 1;
            }
            self.widths.push(width);
            self.format(line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(line0, line1);
    }

    fn write_lines(&mut self, from: usize, to: usize) {
        for i in from..to {
            for (j, cell) in self.lines[i].iter().enumerate() {
                self.out.push_str(cell);
                if j < self.widths.len() && j + 1 < self.lines[i].len() {
                    let fill = self.widths[j].saturating_sub(cell.chars().count());
                    self.out.push_str(&" ".repeat(fill));
                }
            }
            if i + 1 < self.lines.len() {
                self.out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tabwriter_aligns_like_go() {
        assert_eq!(
            tabwrite("a\tb\tc\nlonger-name-here\tx\ty\n"),
            "a                  b         c\nlonger-name-here   x         y\n"
        );
        // A line without the column ends the block.
        assert_eq!(
            tabwrite("ab\tc\nno tabs\nabcdefghijk\td\n"),
            "ab        c\nno tabs\nabcdefghijk   d\n"
        );
    }

    #[test]
    fn minimum_widths_pad_short_columns() {
        // `docker images`: TAG padded to 10; `docker volume ls`: DRIVER to 10.
        assert_eq!(
            tabwrite("REPOSITORY\tTAG\tIMAGE ID\nbb\t1\t77594b83d944\n"),
            "REPOSITORY   TAG       IMAGE ID\nbb           1         77594b83d944\n"
        );
        assert_eq!(
            tabwrite_min("UID\tPID\nroot\t1\n", 20),
            format!("UID{}PID\nroot{}1\n", " ".repeat(17), " ".repeat(16))
        );
    }

    #[test]
    fn table_has_docker_headers() {
        let headers = HashMap::from([("ID", "CONTAINER ID"), ("Names", "NAMES")]);
        let mut t =
            Table::new("table {{.ID}}\\t{{.Names}}\\t{{.Status | lower}}", &headers).unwrap();
        t.add(&json!({"ID": "abc123", "Names": "web", "Status": "Up"}))
            .unwrap();
        assert_eq!(
            t.finish(),
            "CONTAINER ID   NAMES     STATUS\nabc123         web       up\n"
        );
        let mut t = Table::new("json", &headers).unwrap();
        t.add(&json!({"b": 1, "a": "x"})).unwrap();
        assert_eq!(t.finish(), "{\"a\":\"x\",\"b\":1}\n");
        let t = Table::new("table {{.Size}}", &headers).unwrap();
        assert_eq!(t.finish(), "SIZE\n");
    }
}
