use super::*;

fn err(text: &str) -> String {
    match check_alert_template(text) {
        Ok(()) => panic!("{text:?} should fail"),
        Err(e) => format!("{}: {}", e.line, e.message),
    }
}

#[test]
fn what_real_rule_files_use_parses() {
    for ok in [
        "plain text, no actions",
        "{{ $labels.instance }} is down",
        "VALUE = {{ $value }}\n  LABELS = {{ $labels }}",
        "{{ $value | humanize }}",
        "{{ printf \"%.2f\" $value }}",
        "{{$labels.job}}",
        "{{ $value | printf \"%.1f\" }}",
        "{{ humanize $value }}",
        "{{ $externalURL }}/alerts and {{ $externalLabels.cluster }}",
        "{{ .Labels.job }} {{ .Value }}",
        "{{ if gt $value 80.0 }}critical{{ else if gt $value 50.0 }}warning{{ else }}ok{{ end }}",
        "{{ range $k, $v := $labels }}{{ $k }}={{ $v }}{{ end }}",
        "{{ range $labels }}{{ . }}{{ else }}none{{ end }}",
        "{{ range $i := $labels }}{{ if eq $i \"x\" }}{{ break }}{{ end }}{{ continue }}{{ end }}",
        "{{ with $x := $labels.pod }}{{ $x }}{{ end }}",
        "{{- $value -}} and {{- /* a comment */ -}}",
        "{{/* comment */}}",
        "{{ define \"t\" }}{{ . }}{{ end }}{{ template \"t\" $labels }}",
        "{{ block \"b\" . }}default{{ end }}",
        "{{ (query \"up\" | first | value) }}",
        "{{ index $labels \"job\" | toUpper }}",
        "{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }}",
        "{{ `raw {{ string` }}",
        "{{ 'c' }} {{ 1e3 }} {{ 0x1F }} {{ -1 }} {{ .5 }} {{ 1+2i }}",
        "{{ $value | }}",
        "{{ 1 2 }}",
        "{{ nil }}",
        "{{ $x := 1 }}{{ $x = 2 }}{{ $x }}",
        "{{\n  $labels.instance\n}}",
    ] {
        assert_eq!(check_alert_template(ok), Ok(()), "{ok:?}");
    }
}

#[test]
fn go_parse_errors_are_reported_with_the_line() {
    assert_eq!(
        err("{{ $labels.instance }"),
        "1: unexpected \"}\" in operand"
    );
    assert_eq!(
        err("ok\n{{ humanise $value }}"),
        "2: function \"humanise\" not defined"
    );
    assert_eq!(
        err("{{ $lables.pod }}"),
        "1: undefined variable \"$lables\""
    );
    assert_eq!(err("{{ end }}"), "1: unexpected {{end}}");
    assert_eq!(err("{{ else }}"), "1: unexpected {{else}}");
    assert_eq!(err("{{ if true }}x"), "1: unexpected EOF");
    assert_eq!(err("{{ \"abc }}"), "1: unterminated quoted string");
    assert_eq!(err("{{ `abc }}"), "1: unterminated raw quoted string");
    assert_eq!(err("{{ 'ab' }}"), "1: malformed character constant: 'ab'");
    assert_eq!(err("{{ $x# }}"), "1: bad character U+0023 '#'");
    assert_eq!(err("{{ break }}"), "1: {{break}} outside {{range}}");
    assert_eq!(err("{{/* x }}"), "1: unclosed comment");
    assert_eq!(
        err("{{/* x */ }}"),
        "1: comment ends before closing delimiter"
    );
    assert_eq!(
        err("{{ \"x\".y }}"),
        "1: unexpected . after term \"\\\"x\\\"\""
    );
    assert_eq!(
        err("{{ $value | 2 }}"),
        "1: non executable command in pipeline stage 2"
    );
    assert_eq!(err("{{ 1x }}"), "1: bad number syntax: \"1x\"");
    assert_eq!(err("{{ 09 }}"), "1: integer overflow: \"09\"");
    assert_eq!(err("{{ \"\\q\" }}"), "1: invalid syntax");
    assert_eq!(err("{{ ) }}"), "1: unexpected \")\" in command");
    assert_eq!(err("{{ (1 }}"), "1: unclosed left paren");
    assert_eq!(err("{{ }}"), "1: missing value for command");
    assert_eq!(err("{{ if }}{{ end }}"), "1: missing value for if");
    assert_eq!(
        err("{{ $a, $b := $labels }}"),
        "1: too many declarations in command"
    );
    assert_eq!(
        err("{{ range $a, $b, $c := $labels }}{{ end }}"),
        "1: too many declarations in range"
    );
    // Go's parser meets the undefined variable before the lexer's error.
    assert_eq!(err("{{ $x : 1 }}"), "1: undefined variable \"$x\"");
    assert_eq!(err("{{ $labels : 1 }}"), "1: expected :=");
    assert_eq!(
        err("{{ template $x }}"),
        "1: unexpected \"$x\" in template clause"
    );
    assert_eq!(err("{{ define \"x\" }}y"), "1: unexpected EOF");
    assert_eq!(err("{{ | }}"), "1: unexpected \"|\" in command");
    assert_eq!(
        err("{{ printf \"a\"$value }}"),
        "1: unexpected \"$value\" in operand"
    );
    assert_eq!(
        err("{{ \u{7} }}"),
        "1: unrecognized character in action: U+0007"
    );
    assert_eq!(err("text {{"), "1: unclosed action");
}

#[test]
fn variables_are_scoped_like_go() {
    // Declared inside if/range/with: gone after {{end}}.
    assert!(check_alert_template("{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}").is_err());
    assert!(check_alert_template("{{ with $x := 1 }}{{ end }}{{ $x }}").is_err());
    // A define body starts with only `$`.
    assert!(check_alert_template("{{ define \"t\" }}{{ $labels }}{{ end }}").is_err());
    assert!(check_alert_template("{{ define \"t\" }}{{ $ }}{{ end }}").is_ok());
    // Top-level declarations persist.
    assert!(check_alert_template("{{ $x := 1 }}{{ if true }}{{ $x }}{{ end }}").is_ok());
}

#[test]
fn else_if_shares_one_end_and_only_if_allows_it() {
    assert!(check_alert_template("{{ if 1 }}a{{ else if 2 }}b{{ else if 3 }}c{{ end }}").is_ok());
    assert!(check_alert_template("{{ range $labels }}a{{ else if 2 }}b{{ end }}").is_err());
    assert_eq!(
        err("{{ if 1 }}a{{ else }}b{{ else }}c{{ end }}"),
        "1: expected end; found {{else}}"
    );
    assert_eq!(
        err("{{ range $labels }}a{{ else if 2 }}b{{ end }}"),
        "1: unexpected <if> in input"
    );
}
