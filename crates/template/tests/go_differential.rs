//! Differential test: the same templates over the same JSON rendered by Go's own
//! `text/template` (with Docker's functions and its `table` formatter) and by this crate.
//!
//! Needs `go` (Debian's `golang-go`, installed by `scripts/deps`); it fails, not skips, without
//! it. All cases run in one `go run` since each build takes seconds.

use pelagos_template::{Methods, Param, Table, Template};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::Command;

/// The Go side: decodes numbers as Docker's typed fields hold them (integers as `int`, the
/// rest `float64`), renders every case, and prints `{"out": …, "err": …}` per case.
const GO_PROGRAM: &str = r#"
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"text/template"
)

var basic = template.FuncMap{
	"json": func(v interface{}) string {
		buf := &bytes.Buffer{}
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		return strings.TrimSpace(buf.String())
	},
	"split": strings.Split, "join": strings.Join, "title": strings.Title,
	"lower": strings.ToLower, "upper": strings.ToUpper,
	"pad": func(s string, l, r int) string {
		if s == "" { return s }
		return strings.Repeat(" ", l) + s + strings.Repeat(" ", r)
	},
	"truncate": func(s string, n int) string {
		if len(s) < n { return s }
		return s[:n]
	},
}

var header = template.FuncMap{
	"json": func(v string) string { return v }, "split": func(v string, _ string) string { return v },
	"join": func(v string, _ string) string { return v }, "title": func(v string) string { return v },
	"lower": func(v string) string { return v }, "upper": func(v string) string { return v },
	"pad": func(v string, _ int, _ int) string { return v }, "truncate": func(v string, _ int) string { return v },
}

type Case struct {
	Template string            `json:"template"`
	Data     json.RawMessage   `json:"data"`
	Rows     []json.RawMessage `json:"rows"`
	Headers  map[string]string `json:"headers"`
	Labels   map[string]string `json:"labels"`
}

// A context with Docker's Label method (a map type, so its other names stay keys).
type Ctx map[string]interface{}

var labels map[string]string

func (c Ctx) Label(name string) string { return labels[name] }

// The case's data, with the Label method when the case has labels.
func context(c Case, raw []byte) interface{} {
	v := decode(raw)
	if m, ok := v.(map[string]interface{}); ok && c.Labels != nil { return Ctx(m) }
	return v
}

func conv(v interface{}) interface{} {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil { return int(i) }
		f, _ := x.Float64()
		return f
	case []interface{}:
		for i := range x { x[i] = conv(x[i]) }
	case map[string]interface{}:
		for k := range x { x[k] = conv(x[k]) }
	}
	return v
}

func decode(raw []byte) interface{} {
	var v interface{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil { panic(err) }
	return conv(v)
}

func plain(c Case) (string, error) {
	t, err := template.New("").Funcs(basic).Parse(c.Template)
	if err != nil { return "", err }
	var out bytes.Buffer
	labels = c.Labels
	err = t.Execute(&out, context(c, c.Data))
	return out.String(), err
}

// Docker's formatter.Context for a "table ..." format.
func table(c Case) (string, error) {
	format := strings.Trim(strings.TrimPrefix(c.Template, "table"), " ")
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	t, err := template.New("").Funcs(basic).Parse(format)
	if err != nil { return "", err }
	var rows bytes.Buffer
	labels = c.Labels
	for _, r := range c.Rows {
		if err := t.Execute(&rows, context(c, r)); err != nil { return "", err }
		rows.WriteString("\n")
	}
	if !strings.HasPrefix(c.Template, "table") { return rows.String(), nil }
	var out, head bytes.Buffer
	w := tabwriter.NewWriter(&out, 10, 1, 3, ' ', 0)
	// As Docker: the header's error is ignored, the header ends where it happened.
	t.Funcs(header).Execute(&head, c.Headers)
	head.WriteString("\n")
	w.Write(head.Bytes())
	rows.WriteTo(w)
	w.Flush()
	return out.String(), nil
}

func main() {
	raw, err := os.ReadFile(os.Args[1])
	if err != nil { panic(err) }
	var cases []Case
	if err := json.Unmarshal(raw, &cases); err != nil { panic(err) }
	results := []map[string]interface{}{}
	for _, c := range cases {
		var out string
		var err error
		if c.Rows != nil { out, err = table(c) } else { out, err = plain(c) }
		if err != nil { out = err.Error() }
		results = append(results, map[string]interface{}{"out": out, "err": err != nil})
	}
	enc := json.NewEncoder(os.Stdout)
	enc.Encode(results)
	fmt.Fprintln(os.Stderr, len(results), "cases")
	if os.Getenv("SHOW") != "" { for i, r := range results { fmt.Fprintf(os.Stderr, "%d %q\n", i, r["out"]) } }
}
"#;

fn container() -> Value {
    json!({
        "Id": "4f66ad9a0b2e4c0b8a6a8e9fcd6f2c1d",
        "Name": "/web",
        "State": {"Status": "running", "Running": true, "Pid": 4242, "ExitCode": 0, "Health": null},
        "Config": {
            "Env": ["PATH=/usr/bin", "LANG=C.UTF-8"],
            "Cmd": ["sh", "-c", "echo hi"],
            "Labels": {"com.example.z": "last", "com.example.a": "first", "empty": ""},
            "ExposedPorts": {"80/tcp": {}, "443/tcp": {}},
            "Tty": false
        },
        "HostConfig": {"Memory": 268435456, "CpuShares": 0, "Binds": null},
        "Mounts": [],
        "Size": 4261000,
        "Ratio": 0.125,
        "Big": 1234567.5,
        "Tiny": 0.00001,
        "Mixed": [1, "two", 3.5, null, true, {"k": "v"}],
        "Text": "Hello, wide World <&>",
    })
}

/// (template, data) pairs covering Go's syntax, builtins and printing, and Docker's functions.
fn plain_cases() -> Vec<(&'static str, Value)> {
    let c = container();
    let list = json!(["b", "a", "c"]);
    let cases = [
        "{{.Name}}",
        "{{.Id}}",
        "{{.State.Pid}}",
        "{{.Size}}",
        "{{.Ratio}}",
        "{{.Big}}",
        "{{.Tiny}}",
        "{{.Mixed}}",
        "{{.Config.Env}}",
        "{{.Config.Labels}}",
        "{{.Config.ExposedPorts}}",
        "{{.State.Health}}",
        "{{.Missing}}",
        "{{.Missing.Deeper}}",
        "{{.State.Health.Status}}",
        "{{.Name.Oops}}",
        "{{.State}}",
        "{{if .State.Running}}up{{else}}down{{end}}",
        "{{if .State.ExitCode}}a{{else if .Mounts}}b{{else if .Config.Env}}c{{end}}",
        "{{if and .State.Running (not .Config.Tty)}}yes{{end}}",
        "{{with .Config.Labels}}{{index . \"com.example.a\"}}{{end}}",
        "{{with .HostConfig.Binds}}binds{{else}}no binds{{end}}",
        "{{range .Config.Env}}{{.}};{{end}}",
        "{{range $i, $e := .Config.Cmd}}{{$i}}:{{$e}} {{end}}",
        "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}",
        "{{range $p, $conf := .Config.ExposedPorts}}{{$p}} {{end}}",
        "{{range .Mounts}}m{{else}}none{{end}}",
        "{{range .Mixed}}[{{.}}]{{end}}",
        "{{range .Config.Cmd}}{{if eq . \"-c\"}}{{break}}{{end}}{{.}}{{end}}",
        "{{range .Config.Cmd}}{{if eq . \"-c\"}}{{continue}}{{end}}{{.}}{{end}}",
        "{{range .Name}}x{{end}}",
        "{{$n := .Name}}{{range .Config.Env}}{{$n}}{{end}}",
        "{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}",
        "{{range .Config.Cmd}}{{$.Name}}{{end}}",
        "{{.Config.Cmd | json}}",
        "{{json .}}",
        "{{json .Config}}",
        "{{json .Missing}}",
        "{{json .Text}}",
        "{{json .Mixed}}",
        "{{.Name | printf \"%s!\"}}",
        "{{eq .State.Status \"exited\" \"running\"}}",
        "{{eq .State.Pid 4242}}",
        "{{ne .Name \"/db\"}}",
        "{{lt .State.Pid 5000}} {{le 2 2}} {{gt \"b\" \"a\"}} {{ge 1.5 2.5}}",
        "{{eq .Ratio 1}}",
        "{{eq .Config.Env .Config.Env}}",
        "{{lt true false}}",
        "{{eq .Missing nil}}",
        "{{or .State.ExitCode .Mounts \"fallback\"}}",
        "{{and 1 0 .Missing.X}}",
        "{{not .Mounts}}",
        "{{len .Config.Env}} {{len .Name}} {{len .Config.Labels}}",
        "{{len .Size}}",
        "{{index .Config.Cmd 2}}",
        "{{index . \"Config\" \"Cmd\" 0}}",
        "{{index .Config.Labels \"nope\"}}",
        "{{index .Config.Cmd 9}}",
        "{{index .Name 1}}",
        "{{slice .Config.Cmd 1}} {{slice .Name 1 3}}",
        "{{printf \"%s|%d|%v|%q|%t\" .Name .State.Pid .Ratio .Name .State.Running}}",
        "{{printf \"%-12s|%8s|%05d|%x|%X|%o\" .Name .State.Status 42 255 255 8}}",
        "{{printf \"%.2f|%8.3f|%e|%g|%.3g\" .Ratio .Big .Big .Big .Big}}",
        "{{printf \"%d %s\" .Name .State.Pid}}",
        "{{printf \"%d %d\" 1}}",
        "{{printf \"%d\" 1 \"x\"}}",
        "{{printf \"%v %v %s\" .Config.Cmd .Config.Labels .Config.Env}}",
        "{{printf \"%v\" .Missing}}",
        "{{printf \"%c%c %+d % d %%\" 72 105 5 7}}",
        "{{printf \"%q\" 'x'}}",
        "{{print 1 2 \"a\" \"b\" 3 .Ratio}}",
        "{{println .Name .Size}}",
        "{{print .Missing}}",
        "{{split .Text \" \"}}",
        "{{join (split \"a:b:c\" \":\") \"-\"}}",
        "{{title .Text}}",
        "{{lower .Text}} {{upper .Text}}",
        "[{{pad .Name 2 3}}]",
        "[{{pad \"\" 2 3}}]",
        "{{truncate .Id 12}}",
        "{{truncate .Name 40}}",
        "{{.Id | truncate 12}}",
        "{{upper .Size}}",
        "{{truncate .Name \"x\"}}",
        "{{nosuch .Name}}",
        "a  {{- .Name -}}  b",
        "a {{/* comment */}}b {{- /* trimmed */ -}} c",
        "{{`raw \\t`}} {{\"esc \\t\\\"q\\\"\"}} {{'a'}} {{0x1F}} {{-7}} {{1e3}} {{2.50}}",
        "{{(index .Config.Cmd 0) | upper}}",
        "{{len (split .Text \",\")}}",
        "{{if (eq (len .Config.Env) 2)}}two{{end}}",
        "{{.Name}",
        "{{if .Name}}x",
        "{{end}}",
        "{{else}}",
        "{{nil}}",
        "{{.Name | .Id}}",
        "{{$undefined}}",
    ];
    let mut out: Vec<(&str, Value)> = cases.iter().map(|t| (*t, c.clone())).collect();
    out.push((
        "{{range .}}{{.}}{{end}} {{index . 1}} {{len .}}",
        list.clone(),
    ));
    out.push(("{{.}} {{printf \"%5.1f\" .}}", json!(3.25)));
    out.push(("{{if .}}t{{else}}f{{end}}", json!("")));
    out.push(("{{.}}", json!(null)));
    out
}

/// `table` formats over rows, with Docker-style titles.
fn table_cases() -> Vec<(&'static str, Vec<Value>)> {
    let rows = vec![
        json!({"ID": "4f66ad9a0b2e", "Image": "busybox", "Names": "web", "Status": "Up 2 minutes", "Size": 0}),
        json!({"ID": "aa11", "Image": "registry.example.com/team/app:1.2.3", "Names": "a-very-long-container-name", "Status": "Exited (0)", "Size": 1000}),
    ];
    vec![
        ("table {{.ID}}\\t{{.Image}}\\t{{.Names}}", rows.clone()),
        (
            "table {{.ID}}\\t{{.Status | lower}}\\t{{.Size}}",
            rows.clone(),
        ),
        ("table {{.Names}}:{{.Image}}", rows.clone()),
        (
            "table {{upper .Names}}\\t{{truncate .Image 8}}\\t{{json .Size}}",
            rows.clone(),
        ),
        ("table {{.ID}}\\t{{.Names}}", vec![]),
        ("{{.ID}}\\t{{.Names}}", rows),
    ]
}

/// The labels Docker's `Label` method reads in the method cases.
fn method_labels() -> Value {
    json!({"com.example.a": "first", "com.example.z": "last", "empty": "", "x y": "spaced"})
}

/// Method calls on the context, Docker's `{{.Label "k"}}`, and their errors.
fn method_cases() -> Vec<(&'static str, Value)> {
    let c = container();
    let cases = [
        r#"{{.Label "com.example.a"}}"#,
        r#"{{.Label "nope"}}|{{.Label "empty"}}|{{.Label "x y"}}"#,
        r#"{{ .Label "com.example.z" | upper }}"#,
        r#"{{"com.example.a" | .Label}}"#,
        r#"{{if .Label "com.example.a"}}yes{{end}}{{if .Label "empty"}}no{{end}}"#,
        r#"{{with .Label "com.example.z"}}[{{.}}]{{end}}"#,
        r#"{{upper (.Label "com.example.a")}} {{len (.Label "com.example.z")}}"#,
        r#"{{printf "%s=%q" "k" (.Label "com.example.a")}}"#,
        r#"{{$k := "empty"}}[{{.Label $k}}]"#,
        r#"{{range .Config.Env}}{{$.Label "com.example.a"}};{{end}}"#,
        r#"{{$c := .}}{{with .Config}}{{$c.Label "com.example.z"}}{{end}}"#,
        r#"{{(.).Label "com.example.a"}}"#,
        r#"{{eq (.Label "com.example.a") "first"}}"#,
        r#"{{.Missing.Label "x"}}"#,
        r#"{{.Name}} {{.Config.Labels}}"#,
        "{{.Label}}",
        r#"{{.Label "a" "b"}}"#,
        r#"{{"a" | .Label "b"}}"#,
        "{{.Label 1}}",
        "{{.Label true}}",
        "{{.Label .Size}}",
        "{{.Label .Missing}}",
        "{{.Label .State.Health}}",
        "{{1 | .Label}}",
        r#"{{printf "%s" .Label}}"#,
        "{{.Label.X}}",
        r#"{{.Config.Labels "x"}}"#,
        r#"{{with .Config}}{{.Label "x"}}{{end}}"#,
        r#"{{.Name "x"}}"#,
        r#"{{. "x"}}"#,
        r#"{{$x := .}}{{$x "x"}}"#,
        r#"{{.State.Health.X "x"}}"#,
    ];
    cases.iter().map(|t| (*t, c.clone())).collect()
}

/// `table` formats with method calls: Docker's header pass runs over a map of titles, where
/// `.Label "k"` is an error that Docker ignores, ending the header there.
fn method_table_cases() -> Vec<(&'static str, Vec<Value>)> {
    let rows = table_cases().swap_remove(0).1;
    vec![
        (r#"table {{.ID}}\t{{.Label "com.example.a"}}"#, rows.clone()),
        (
            r#"table {{.Label "com.example.z"}}\t{{.Names}}"#,
            rows.clone(),
        ),
        (r#"{{.Names}}\t{{.Label "empty"}}|"#, rows.clone()),
        (r#"table {{.ID}}\t{{.Label}}"#, rows),
    ]
}

fn titles() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("ID", "CONTAINER ID"),
        ("Names", "NAMES"),
        ("Image", "IMAGE"),
    ])
}

/// Docker's header object for the Go side: every row field titled.
fn go_headers() -> Value {
    let titles = titles();
    let mut map = serde_json::Map::new();
    for key in ["ID", "Image", "Names", "Status", "Size"] {
        let title = titles
            .get(key)
            .map(|t| t.to_string())
            .unwrap_or(key.to_uppercase());
        map.insert(key.to_string(), Value::String(title));
    }
    Value::Object(map)
}

/// Docker's `Label` method over `labels`, for the cases that have them.
fn label_method(labels: &Value) -> Methods<'_> {
    Methods::new().with("Label", &[Param::String], move |args| {
        let name = args[0].as_str().unwrap_or_default();
        Ok(labels.get(name).cloned().unwrap_or(json!("")))
    })
}

fn ours_plain(t: &str, data: &Value, labels: Option<&Value>) -> (String, bool) {
    let methods = labels.map(label_method).unwrap_or_default();
    match Template::parse(t).and_then(|t| t.render_with(data, &methods)) {
        Ok(out) => (out, false),
        Err(e) => (e.to_string(), true),
    }
}

fn ours_table(format: &str, rows: &[Value], labels: Option<&Value>) -> (String, bool) {
    let methods = labels.map(label_method).unwrap_or_default();
    let run = || {
        let mut table = Table::new(format, &titles())?;
        for r in rows {
            table.add_with(r, &methods)?;
        }
        Ok::<_, pelagos_template::Error>(table.finish())
    };
    match run() {
        Ok(out) => (out, false),
        Err(e) => (e.to_string(), true),
    }
}

fn run_go(cases: &Value) -> Vec<(String, bool)> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let program = dir.path().join("render.go");
    let input = dir.path().join("cases.json");
    std::fs::write(&program, GO_PROGRAM).expect("write Go program");
    std::fs::write(&input, cases.to_string()).expect("write cases");
    let output = Command::new("go")
        .arg("run")
        .arg(&program)
        .arg(&input)
        .env("GO111MODULE", "off")
        .output()
        .expect("`go` is needed for this test: install golang-go (scripts/deps)");
    assert!(
        output.status.success(),
        "go run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    if std::env::var_os("SHOW").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    }
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).expect("Go output is JSON");
    results
        .iter()
        .map(|r| {
            (
                r["out"].as_str().unwrap_or_default().to_string(),
                r["err"] == json!(true),
            )
        })
        .collect()
}

/// One case: a template over one value or (a list format) over rows, with Docker's `Label`
/// method over `labels` when there are some.
struct Case {
    template: &'static str,
    data: Data,
    labels: Option<Value>,
}

enum Data {
    One(Value),
    Rows(Vec<Value>),
}

impl Case {
    fn go_input(&self) -> Value {
        let mut case = match &self.data {
            Data::One(d) => json!({"template": self.template, "data": d}),
            Data::Rows(rows) => {
                json!({"template": self.template, "rows": rows, "headers": go_headers()})
            }
        };
        if let Some(labels) = &self.labels {
            case["labels"] = labels.clone();
        }
        case
    }

    fn ours(&self) -> (String, bool) {
        match &self.data {
            Data::One(d) => ours_plain(self.template, d, self.labels.as_ref()),
            Data::Rows(rows) => ours_table(self.template, rows, self.labels.as_ref()),
        }
    }
}

fn all_cases() -> Vec<Case> {
    let labels = method_labels();
    let case = |template, data, labels: Option<&Value>| Case {
        template,
        data,
        labels: labels.cloned(),
    };
    let mut cases: Vec<Case> = plain_cases()
        .into_iter()
        .map(|(t, d)| case(t, Data::One(d), None))
        .collect();
    cases.extend(
        table_cases()
            .into_iter()
            .map(|(t, rows)| case(t, Data::Rows(rows), None)),
    );
    cases.extend(
        method_cases()
            .into_iter()
            .map(|(t, d)| case(t, Data::One(d), Some(&labels))),
    );
    cases.extend(
        method_table_cases()
            .into_iter()
            .map(|(t, rows)| case(t, Data::Rows(rows), Some(&labels))),
    );
    cases
}

#[test]
fn matches_go_text_template() {
    let cases = all_cases();
    let go = run_go(&Value::Array(cases.iter().map(Case::go_input).collect()));
    assert_eq!(go.len(), cases.len());
    let mut mismatches = Vec::new();
    for (case, (go_out, go_err)) in cases.iter().zip(&go) {
        let (out, err) = case.ours();
        let same = match go_out.split_once(">: ") {
            // Method calls are new: their errors must be Go's words too.
            Some((_, msg)) if *go_err && case.labels.is_some() => err && out.ends_with(msg),
            _ if *go_err => err,
            _ => !err && out == *go_out,
        };
        if !same {
            mismatches.push(format!(
                "{}\n   go:   {go_out:?} (error: {go_err})\n   ours: {out:?} (error: {err})",
                case.template
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
