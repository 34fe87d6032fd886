//! Unit tests: templates rendered over JSON with the outputs Go's `text/template` gives.

use super::*;
use serde_json::json;

fn data() -> Value {
    json!({
        "Name": "web",
        "ID": "0123456789abcdef",
        "Config": {"Env": ["A=1", "B=2"], "Labels": {"z": "last", "a": "first"}, "Cmd": null},
        "Ports": [],
        "Size": 4261000,
        "Ratio": 0.25,
        "Running": true,
        "Count": 0,
        "Names": ["alpha", "beta", "gamma"],
    })
}

fn r(t: &str) -> String {
    Template::parse(t)
        .and_then(|t| t.render(&data()))
        .unwrap_or_else(|e| panic!("{t}: {e}"))
}

fn err(t: &str) -> String {
    match Template::parse(t).and_then(|t| t.render(&data())) {
        Ok(out) => panic!("{t}: expected an error, got {out:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn fields_and_printing() {
    assert_eq!(
        r("{{.Name}} {{.Size}} {{.Ratio}} {{.Running}}"),
        "web 4261000 0.25 true"
    );
    assert_eq!(r("{{.Config.Env}}"), "[A=1 B=2]");
    assert_eq!(r("{{.Config.Labels}}"), "map[a:first z:last]");
    assert_eq!(
        r("{{.Nope}}|{{.Nope.Deeper}}|{{.Config.Cmd}}"),
        "<no value>|<no value>|<no value>"
    );
    assert!(err("{{.Config.Cmd.X}}").contains("nil pointer evaluating interface {}.X"));
    assert!(err("{{.Name.X}}").contains("can't evaluate field X in type string"));
    assert_eq!(r("{{.}}").chars().next(), Some('m'));
}

#[test]
fn control_flow() {
    assert_eq!(r("{{if .Running}}up{{else}}down{{end}}"), "up");
    assert_eq!(r("{{if .Count}}a{{else if .Ports}}b{{else}}c{{end}}"), "c");
    assert_eq!(r("{{with .Config.Labels}}{{.a}}{{end}}"), "first");
    assert_eq!(r("{{with .Nope}}x{{else}}none{{end}}"), "none");
    assert_eq!(r("{{range .Names}}[{{.}}]{{end}}"), "[alpha][beta][gamma]");
    assert_eq!(
        r("{{range $i, $n := .Names}}{{$i}}={{$n}} {{end}}"),
        "0=alpha 1=beta 2=gamma "
    );
    assert_eq!(
        r("{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}};{{end}}"),
        "a:first;z:last;"
    );
    assert_eq!(r("{{range .Ports}}x{{else}}no ports{{end}}"), "no ports");
    assert_eq!(
        r("{{range .Names}}{{if eq . \"beta\"}}{{break}}{{end}}{{.}}{{end}}"),
        "alpha"
    );
    assert_eq!(
        r("{{range .Names}}{{if eq . \"beta\"}}{{continue}}{{end}}{{.}}{{end}}"),
        "alphagamma"
    );
    assert!(err("{{range .Name}}{{end}}").contains("range can't iterate over web"));
}

#[test]
fn variables_and_pipelines() {
    assert_eq!(r("{{$x := .Name}}{{$x}}-{{$.ID}}"), "web-0123456789abcdef");
    assert_eq!(r("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}"), "2");
    assert_eq!(r("{{range .Names}}{{$.Name}}{{end}}"), "webwebweb");
    assert_eq!(r("{{.Config.Env | json}}"), "[\"A=1\",\"B=2\"]");
    assert_eq!(r("{{.Name | printf \"%s-%s\" \"x\"}}"), "x-web");
    assert_eq!(r("{{(index .Names 1) | upper}}"), "BETA");
    assert_eq!(r("{{len (split \"a,b,c\" \",\")}}"), "3");
    assert!(err("{{$nope}}").contains("undefined variable: $nope"));
}

#[test]
fn comparisons_and_logic() {
    assert_eq!(
        r("{{eq .Name \"db\" \"web\"}} {{ne .Count 0}} {{lt 1 2}} {{ge \"b\" \"a\"}}"),
        "true false true true"
    );
    assert_eq!(
        r("{{and .Running .Name}} {{or .Count .Ports \"x\"}} {{not .Count}}"),
        "web x true"
    );
    assert_eq!(r("{{and .Count .Nope.X}}"), "0");
    assert!(err("{{eq .Ratio 1}}").contains("incompatible types"));
    assert!(err("{{lt true false}}").contains("invalid type for comparison"));
    assert!(err("{{eq .Names .Names}}").contains("uncomparable"));
    assert_eq!(r("{{eq .Nope nil}}"), "true");
}

#[test]
fn len_index_slice() {
    assert_eq!(
        r("{{len .Names}} {{len .Name}} {{len .Config.Labels}}"),
        "3 3 2"
    );
    assert_eq!(
        r("{{index .Names 2}} {{index .Config.Labels \"z\"}} {{index . \"Config\" \"Env\" 0}}"),
        "gamma last A=1"
    );
    assert_eq!(r("{{index .Config.Labels \"missing\"}}"), "<no value>");
    assert_eq!(r("{{slice .Names 1 2}} {{slice .Name 1}}"), "[beta] eb");
    assert!(err("{{index .Names 5}}").contains("index out of range: 5"));
    assert!(err("{{len .Size}}").contains("len of type int"));
}

#[test]
fn printing_functions() {
    assert_eq!(
        r("{{printf \"%-6s|%5d|%q|%t|%v\" .Name .Size .Name .Running .Names}}"),
        "web   |4261000|\"web\"|true|[alpha beta gamma]"
    );
    assert_eq!(r("{{printf \"%.1f%%\" .Ratio}}"), "0.2%");
    assert_eq!(r("{{print 1 2 \"a\" 3}}"), "1 2a3");
    assert_eq!(r("{{println .Name 3}}"), "web 3\n");
    assert_eq!(r("{{printf \"%d\" .Name}}"), "%!d(string=web)");
}

#[test]
fn docker_functions() {
    assert_eq!(
        r("{{json .Config.Labels}}"),
        "{\"a\":\"first\",\"z\":\"last\"}"
    );
    assert_eq!(r("{{json .Nope}}"), "null");
    assert_eq!(r("{{join .Names \", \"}}"), "alpha, beta, gamma");
    assert_eq!(r("{{split \"a:b\" \":\"}}"), "[a b]");
    assert_eq!(
        r("{{title \"hello big-world\"}} {{lower \"AbC\"}} {{upper .Name}}"),
        "Hello Big-World abc WEB"
    );
    assert_eq!(r("[{{pad .Name 1 2}}][{{pad \"\" 1 2}}]"), "[ web  ][]");
    assert_eq!(
        r("{{truncate .ID 12}} {{truncate \"ab\" 5}}"),
        "0123456789ab ab"
    );
    assert!(err("{{truncate .ID \"x\"}}").contains("expected int"));
    assert!(err("{{nope 1}}").contains("\"nope\" not defined"));
}

#[test]
fn syntax() {
    assert_eq!(r("a  {{- .Name -}}  b"), "awebb");
    assert_eq!(r("a {{/* note */}}b{{- /* trimmed */ -}} c"), "a bc");
    assert_eq!(
        r("{{`raw\\n`}} {{'a'}} {{0x10}} {{-3}} {{1.5e3}}"),
        "raw\\n 97 16 -3 1500"
    );
    assert_eq!(r("{{\"}}\"}}"), "}}");
    assert_eq!(r("line1\n{{.Name}}"), "line1\nweb");
    for bad in [
        "{{.Name",
        "{{if .X}}",
        "{{end}}",
        "{{else}}",
        "{{break}}",
        "{{(.Name}}",
        "{{\"x}}",
        "{{define \"x\"}}{{end}}",
    ] {
        assert!(Template::parse(bad).is_err(), "{bad}");
    }
    let e = Template::parse("a\n{{if}}").unwrap_err().to_string();
    assert!(e.contains("2:"), "{e}");
}

#[test]
fn bare_json_format() {
    let t = Template::parse_format("json").unwrap();
    assert_eq!(
        t.render(&json!({"a": [1, 2.5]})).unwrap(),
        "{\"a\":[1,2.5]}"
    );
}

/// `data()` with Docker's container `Label` method over a labels map it does not show.
fn with_label(t: &str) -> Result<String, Error> {
    let labels = json!({"com.example.k": "v1", "empty": ""});
    let methods = Methods::new().with("Label", &[Param::String], |args| {
        let name = args[0].as_str().unwrap_or_default();
        Ok(labels.get(name).cloned().unwrap_or(json!("")))
    });
    Template::parse(t).and_then(|t| t.render_with(&data(), &methods))
}

fn m(t: &str) -> String {
    with_label(t).unwrap_or_else(|e| panic!("{t}: {e}"))
}

fn m_err(t: &str) -> String {
    match with_label(t) {
        Ok(out) => panic!("{t}: expected an error, got {out:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn method_calls() {
    assert_eq!(m(r#"{{.Label "com.example.k"}}|{{.Label "nope"}}"#), "v1|");
    assert_eq!(m(r#"{{.Label "com.example.k" | upper}}"#), "V1");
    assert_eq!(m(r#"{{ "com.example.k" | .Label }}"#), "v1");
    assert_eq!(m(r#"{{if .Label "empty"}}y{{else}}n{{end}}"#), "n");
    assert_eq!(m(r#"{{upper (.Label "com.example.k")}}"#), "V1");
    assert_eq!(m(r#"{{$k := "com.example.k"}}{{.Label $k}}"#), "v1");
    // The method belongs to the rendered value, wherever it is reached from.
    assert_eq!(
        m(r#"{{range .Names}}{{$.Label "com.example.k"}}{{end}}"#),
        "v1v1v1"
    );
    assert_eq!(
        m(r#"{{$c := .}}{{with .Config}}{{$c.Label "empty"}}x{{end}}"#),
        "x"
    );
    assert_eq!(m(r#"{{(.).Label "com.example.k"}}"#), "v1");
    // Fields are still fields; a missing value has no methods and no error (Go's zero).
    assert_eq!(m("{{.Name}}"), "web");
    assert_eq!(m(r#"{{.Nope.Label "x"}}"#), "<no value>");
}

#[test]
fn method_call_errors_are_gos() {
    let e = m_err("{{.Label}}");
    assert!(
        e.contains("wrong number of args for Label: want 1 got 0"),
        "{e}"
    );
    let e = m_err(r#"{{.Label "a" "b"}}"#);
    assert!(
        e.contains("wrong number of args for Label: want 1 got 2"),
        "{e}"
    );
    let e = m_err(r#"{{"a" | .Label "b"}}"#);
    assert!(e.contains("want 1 got 2"), "{e}");
    let e = m_err(r#"{{printf "%s" .Label}}"#);
    assert!(e.contains("want 1 got 0"), "{e}");
    let e = m_err("{{.Label.X}}");
    assert!(e.contains("want 1 got 0"), "{e}");
    let e = m_err("{{.Label 1}}");
    assert!(e.contains("expected string; found 1"), "{e}");
    let e = m_err("{{.Label .Size}}");
    assert!(
        e.contains("wrong type for value; expected string; got int"),
        "{e}"
    );
    let e = m_err("{{.Label .Nope}}");
    assert!(e.contains("invalid value; expected string"), "{e}");
    let e = m_err("{{1 | .Label}}");
    assert!(e.contains("expected string; got int"), "{e}");
    let e = m_err(r#"{{.Name "x"}}"#);
    assert!(e.contains("Name is not a method but has arguments"), "{e}");
    let e = m_err(r#"{{with .Config}}{{.Label "x"}}{{end}}"#);
    assert!(e.contains("Label is not a method but has arguments"), "{e}");
    let e = m_err(r#"{{. "x"}}"#);
    assert!(e.contains("can't give argument to non-function ."), "{e}");
    // Without methods, `.Label` is a key like any other.
    assert!(err(r#"{{.Label "x"}}"#).contains("Label is not a method but has arguments"));
    assert_eq!(r("{{.Label}}"), "<no value>");
}

#[test]
fn method_bodies_may_fail() {
    let methods = Methods::new().with("Boom", &[], |_| Err("no such thing".into()));
    let t = Template::parse("a{{.Boom}}").unwrap();
    let e = t.render_with(&data(), &methods).unwrap_err().to_string();
    assert!(e.contains("error calling Boom: no such thing"), "{e}");
    let any = Methods::new().with("Echo", &[Param::Any, Param::Int], |args| {
        Ok(json!(format!("{}/{}", args[0], args[1])))
    });
    let t = Template::parse(r#"{{.Echo .Nope 3}} {{.Echo "s" .Count}}"#).unwrap();
    assert_eq!(t.render_with(&data(), &any).unwrap(), "null/3 \"s\"/0");
}
