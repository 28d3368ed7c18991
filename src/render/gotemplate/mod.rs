//! A parse-only check of Go `text/template` text, as Prometheus runs it on
//! the labels and annotations of alerting rules (`rulefmt`'s
//! `testTemplateParsing` → `template.Expander.ParseTest`).
//!
//! It mirrors Go's `text/template/parse` (Go 1.19–1.22): the lexer in
//! [`lex`], and here the parser's structure rules — balanced `{{ }}`,
//! `if`/`range`/`with`/`block`/`define` closed by `{{end}}`, `{{else}}` and
//! `{{else if}}` only where allowed, `{{break}}`/`{{continue}}` only inside
//! `range`, pipelines with declarations (`$x :=`, `$i, $e :=`), commands and
//! operands separated by spaces, field chains, parenthesised pipelines,
//! `{{template "name"}}`, string, raw-string, char and number literals —
//! and its semantic checks at parse time: every function must be defined
//! (Go's builtins plus Prometheus' template functions) and every variable
//! declared in scope (`$labels`, `$externalLabels`, `$externalURL`,
//! `$value` are predefined, as Prometheus prepends their definitions).
//! Like Go, it does not type-check arguments: that happens only when
//! Prometheus expands the template.

mod lex;
mod literal;

use lex::{Item, Kind};

/// Functions every Go template has (`text/template` builtins).
const GO_BUILTINS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

/// Prometheus' template functions (`template/template.go`; the same set in
/// 2.42 and 3.x, checked against promtool 2.42).
const PROMETHEUS_FUNCS: &[&str] = &[
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "stripPort",
    "stripDomain",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "pathPrefix",
    "externalURL",
    "parseDuration",
];

/// What Prometheus prepends to every alert template it checks.
const ALERT_DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// A template error: the line inside the text, and Go's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub line: usize,
    pub message: String,
}

impl TemplateError {
    /// A malformed literal at `item`.
    fn literal(item: &Item) -> impl FnOnce(literal::LiteralError) -> TemplateError {
        let line = item.line;
        move |e| TemplateError {
            line,
            message: e.to_string(),
        }
    }
}

/// Checks an alerting rule's label or annotation value.
pub fn check_alert_template(text: &str) -> Result<(), TemplateError> {
    // The definitions hold no newline, so line numbers stay the text's own.
    check(&format!("{ALERT_DEFS}{text}"))
}

/// Parses `text` as a Go template with Prometheus' functions.
pub fn check(text: &str) -> Result<(), TemplateError> {
    let mut p = Parser {
        items: lex::lex(text),
        at: 0,
        vars: vec!["$".into()],
        range_depth: 0,
    };
    p.parse()
}

type Res<T> = Result<T, TemplateError>;

/// What an item list ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Other,
    End,
    Else,
    ElseIf,
}

/// Operand kinds that matter to the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Term {
    Literal,
    Executable,
}

struct Parser {
    items: Vec<Item>,
    at: usize,
    vars: Vec<String>,
    range_depth: usize,
}

/// How Go prints an end or else node.
fn node_text(node: Node) -> &'static str {
    match node {
        Node::End => "{{end}}",
        Node::Else | Node::ElseIf => "{{else}}",
        Node::Other => "item",
    }
}

fn describe(item: &Item) -> String {
    match item.kind {
        Kind::Eof => "EOF".into(),
        Kind::Error => item.text.clone(),
        Kind::Space => "space".into(),
        Kind::RightDelim | Kind::LeftDelim | Kind::Char | Kind::Pipe => {
            format!("{:?}", item.text)
        }
        Kind::Block
        | Kind::Break
        | Kind::Continue
        | Kind::Define
        | Kind::Else
        | Kind::End
        | Kind::If
        | Kind::Nil
        | Kind::Range
        | Kind::Template
        | Kind::With
        | Kind::Dot => {
            format!("<{}>", item.text)
        }
        _ => format!("{:?}", item.text),
    }
}

impl Parser {
    fn item(&self, i: usize) -> Item {
        self.items.get(i).cloned().unwrap_or(Item {
            kind: Kind::Eof,
            text: String::new(),
            line: self.items.last().map_or(1, |l| l.line),
        })
    }

    fn fail<T>(&self, item: &Item, message: impl Into<String>) -> Res<T> {
        Err(TemplateError {
            line: item.line,
            message: message.into(),
        })
    }

    /// The next item; a lexer error ends the parse with its message.
    fn next(&mut self) -> Res<Item> {
        let it = self.item(self.at);
        self.at += 1;
        if it.kind == Kind::Error {
            return self.fail(&it, it.text.clone());
        }
        Ok(it)
    }

    fn next_non_space(&mut self) -> Res<Item> {
        loop {
            let it = self.next()?;
            if it.kind != Kind::Space {
                return Ok(it);
            }
        }
    }

    fn peek(&self) -> Item {
        self.item(self.at)
    }

    fn peek_non_space(&mut self) -> Item {
        while self.peek().kind == Kind::Space {
            self.at += 1;
        }
        self.peek()
    }

    fn backup(&mut self) {
        self.at = self.at.saturating_sub(1);
    }

    fn unexpected<T>(&self, item: &Item, context: &str) -> Res<T> {
        if item.kind == Kind::Error {
            return self.fail(item, item.text.clone());
        }
        self.fail(item, format!("unexpected {} in {context}", describe(item)))
    }

    fn expect(&mut self, kind: Kind, context: &str) -> Res<Item> {
        let it = self.next_non_space()?;
        if it.kind != kind {
            return self.unexpected(&it, context);
        }
        Ok(it)
    }

    fn parse(&mut self) -> Res<()> {
        loop {
            if self.peek().kind == Kind::Eof {
                return Ok(());
            }
            if self.peek().kind == Kind::LeftDelim {
                let save = self.at;
                self.next()?;
                if self.next_non_space()?.kind == Kind::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.at = save;
            }
            let (node, item) = self.text_or_action()?;
            if matches!(node, Node::End | Node::Else | Node::ElseIf) {
                let what = if node == Node::End {
                    "{{end}}"
                } else {
                    "{{else}}"
                };
                return self.fail(&item, format!("unexpected {what}"));
            }
        }
    }

    /// `{{define "name"}} … {{end}}`, with a fresh variable scope.
    fn parse_definition(&mut self) -> Res<()> {
        let context = "define clause";
        let name = self.next_non_space()?;
        if !matches!(name.kind, Kind::String | Kind::RawString) {
            return self.unexpected(&name, context);
        }
        literal::unquote(&name).map_err(TemplateError::literal(&name))?;
        self.expect(Kind::RightDelim, context)?;
        self.in_fresh_scope(|p| {
            let (end, item) = p.item_list()?;
            if end != Node::End {
                return p.fail(
                    &item,
                    format!("unexpected {} in {context}", describe(&item)),
                );
            }
            Ok(())
        })
    }

    fn in_fresh_scope(&mut self, f: impl FnOnce(&mut Self) -> Res<()>) -> Res<()> {
        let vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let depth = std::mem::replace(&mut self.range_depth, 0);
        let result = f(self);
        self.vars = vars;
        self.range_depth = depth;
        result
    }

    fn text_or_action(&mut self) -> Res<(Node, Item)> {
        let it = self.next_non_space()?;
        match it.kind {
            Kind::Text => Ok((Node::Other, it)),
            Kind::LeftDelim => Ok((self.action()?, it)),
            _ => self.unexpected(&it, "input"),
        }
    }

    /// Items up to `{{end}}` or `{{else}}`; what ended them.
    fn item_list(&mut self) -> Res<(Node, Item)> {
        while self.peek_non_space().kind != Kind::Eof {
            let (node, item) = self.text_or_action()?;
            if node != Node::Other {
                return Ok((node, item));
            }
        }
        let eof = self.peek();
        self.fail(&eof, "unexpected EOF")
    }

    fn action(&mut self) -> Res<Node> {
        let it = self.next_non_space()?;
        match it.kind {
            Kind::Block => self.block_control().map(|_| Node::Other),
            Kind::Break | Kind::Continue => {
                if self.range_depth == 0 {
                    return self.fail(&it, format!("{{{{{}}}}} outside {{{{range}}}}", it.text));
                }
                self.expect(Kind::RightDelim, &format!("{{{{{}}}}}", it.text))?;
                Ok(Node::Other)
            }
            Kind::Else => {
                if self.peek_non_space().kind == Kind::If {
                    return Ok(Node::ElseIf);
                }
                self.expect(Kind::RightDelim, "else")?;
                Ok(Node::Else)
            }
            Kind::End => {
                self.expect(Kind::RightDelim, "end")?;
                Ok(Node::End)
            }
            Kind::If => self.control(true, "if").map(|_| Node::Other),
            Kind::Range => self.control(false, "range").map(|_| Node::Other),
            Kind::With => self.control(false, "with").map(|_| Node::Other),
            Kind::Template => self.template_control().map(|_| Node::Other),
            _ => {
                self.backup();
                self.pipeline("command", Kind::RightDelim)
                    .map(|_| Node::Other)
            }
        }
    }

    /// `if`, `range`, `with`: pipeline, body, optional else, `{{end}}`.
    fn control(&mut self, allow_else_if: bool, context: &str) -> Res<()> {
        let scope = self.vars.len();
        let result = self.control_body(allow_else_if, context);
        self.vars.truncate(scope);
        result
    }

    fn control_body(&mut self, allow_else_if: bool, context: &str) -> Res<()> {
        self.pipeline(context, Kind::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let listed = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (next, item) = listed?;
        match next {
            Node::End => Ok(()),
            Node::ElseIf if allow_else_if => {
                // `{{else if b}}` is `{{else}}{{if b}}…{{end}}{{end}}` sharing
                // one {{end}}.
                self.next_non_space()?; // the `if`
                self.control(true, "if")
            }
            Node::Else | Node::ElseIf => {
                if next == Node::ElseIf {
                    // Go leaves the `if` pending, then fails on it.
                    let it = self.next_non_space()?;
                    return self.unexpected(&it, "input");
                }
                let (end, item) = self.item_list()?;
                if end != Node::End {
                    return self.fail(&item, format!("expected end; found {}", node_text(end)));
                }
                Ok(())
            }
            Node::Other => self.fail(&item, "unexpected item"),
        }
    }

    fn template_name(&mut self, context: &str) -> Res<()> {
        let it = self.next_non_space()?;
        if !matches!(it.kind, Kind::String | Kind::RawString) {
            return self.unexpected(&it, context);
        }
        literal::unquote(&it).map_err(TemplateError::literal(&it))
    }

    fn template_control(&mut self) -> Res<()> {
        let context = "template clause";
        self.template_name(context)?;
        if self.next_non_space()?.kind != Kind::RightDelim {
            self.backup();
            self.pipeline(context, Kind::RightDelim)?;
        }
        Ok(())
    }

    /// `{{block "name" pipeline}} … {{end}}`: the body is its own template.
    fn block_control(&mut self) -> Res<()> {
        let context = "block clause";
        self.template_name(context)?;
        self.pipeline(context, Kind::RightDelim)?;
        self.in_fresh_scope(|p| {
            let (end, item) = p.item_list()?;
            if end != Node::End {
                return p.fail(
                    &item,
                    format!("unexpected {} in {context}", describe(&item)),
                );
            }
            Ok(())
        })
    }

    /// Declarations (`$x :=`, `$x =`, `$i, $e :=`), then commands.
    fn pipeline(&mut self, context: &str, end: Kind) -> Res<()> {
        self.declarations(context)?;
        let mut commands: Vec<Term> = Vec::new();
        loop {
            let it = self.next_non_space()?;
            match it.kind {
                k if k == end => {
                    if commands.is_empty() {
                        return self.fail(&it, format!("missing value for {context}"));
                    }
                    if let Some(i) = commands.iter().skip(1).position(|t| *t == Term::Literal) {
                        return self.fail(
                            &it,
                            format!("non executable command in pipeline stage {}", i + 2),
                        );
                    }
                    return Ok(());
                }
                Kind::Bool
                | Kind::CharConstant
                | Kind::Complex
                | Kind::Dot
                | Kind::Field
                | Kind::Identifier
                | Kind::Number
                | Kind::Nil
                | Kind::RawString
                | Kind::String
                | Kind::Variable
                | Kind::LeftParen => {
                    self.backup();
                    commands.push(self.command()?);
                }
                _ => return self.unexpected(&it, context),
            }
        }
    }

    fn declarations(&mut self, context: &str) -> Res<()> {
        let mut declared = 0;
        loop {
            let v = self.peek_non_space();
            if v.kind != Kind::Variable {
                return Ok(());
            }
            let start = self.at;
            self.next()?;
            let next = self.peek_non_space();
            match next.kind {
                Kind::Assign | Kind::Declare => {
                    self.next()?;
                    self.vars.push(v.text);
                    return Ok(());
                }
                Kind::Char if next.text == "," => {
                    self.next()?;
                    self.vars.push(v.text);
                    declared += 1;
                    if context == "range" && declared < 2 {
                        let follow = self.peek_non_space().kind;
                        if matches!(follow, Kind::Variable | Kind::RightDelim | Kind::RightParen) {
                            continue;
                        }
                        return self.fail(&next, "range can only initialize variables");
                    }
                    return self.fail(&next, format!("too many declarations in {context}"));
                }
                _ => {
                    self.at = start;
                    return Ok(());
                }
            }
        }
    }

    /// Operands up to `|`, `)` or `}}`; returns what its first word is.
    fn command(&mut self) -> Res<Term> {
        let mut first = None;
        loop {
            self.peek_non_space();
            if let Some(t) = self.operand()? {
                first.get_or_insert(t);
            }
            let it = self.next()?;
            match it.kind {
                Kind::Space => continue,
                Kind::RightDelim | Kind::RightParen => self.backup(),
                Kind::Pipe => {}
                _ => return self.unexpected(&it, "operand"),
            }
            break;
        }
        match first {
            Some(t) => Ok(t),
            None => {
                let here = self.peek();
                self.fail(&here, "empty command")
            }
        }
    }

    fn operand(&mut self) -> Res<Option<Term>> {
        let Some((term, item)) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind == Kind::Field {
            let literal = matches!(
                item.kind,
                Kind::Bool
                    | Kind::String
                    | Kind::RawString
                    | Kind::Number
                    | Kind::Nil
                    | Kind::Dot
                    | Kind::CharConstant
            );
            if literal {
                return self.fail(&item, format!("unexpected . after term {:?}", item.text));
            }
            while self.peek().kind == Kind::Field {
                self.next()?;
            }
            return Ok(Some(Term::Executable));
        }
        Ok(Some(term))
    }

    fn term(&mut self) -> Res<Option<(Term, Item)>> {
        let it = self.next_non_space()?;
        let term = match it.kind {
            Kind::Identifier => {
                let name = it.text.as_str();
                if !GO_BUILTINS.contains(&name) && !PROMETHEUS_FUNCS.contains(&name) {
                    return self.fail(&it, format!("function {name:?} not defined"));
                }
                Term::Executable
            }
            Kind::Variable => {
                if !self.vars.contains(&it.text) {
                    return self.fail(&it, format!("undefined variable {:?}", it.text));
                }
                Term::Executable
            }
            Kind::Field => Term::Executable,
            Kind::Dot | Kind::Nil | Kind::Bool => Term::Literal,
            Kind::Number | Kind::CharConstant | Kind::Complex => {
                literal::number(&it).map_err(TemplateError::literal(&it))?;
                Term::Literal
            }
            Kind::String | Kind::RawString => {
                literal::unquote(&it).map_err(TemplateError::literal(&it))?;
                Term::Literal
            }
            Kind::LeftParen => {
                self.pipeline("parenthesized pipeline", Kind::RightParen)?;
                Term::Executable
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some((term, it)))
    }
}

#[cfg(test)]
mod tests;
