//! The lexer of Go's `text/template` (`text/template/parse/lex.go`, as of
//! Go 1.19–1.22, which the Prometheus releases in use are built with),
//! reduced to what a parse check needs: item kinds, their text and line.
//! Delimiters are the defaults `{{` and `}}`; comments are dropped.

/// Kinds of lexed items, named after Go's `itemType`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Error,
    Bool,
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords.
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

/// One lexed item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: Kind,
    pub text: String,
    /// 1-based line of the item's start.
    pub line: usize,
}

fn keyword(word: &str) -> Option<Kind> {
    Some(match word {
        "block" => Kind::Block,
        "break" => Kind::Break,
        "continue" => Kind::Continue,
        "define" => Kind::Define,
        "else" => Kind::Else,
        "end" => Kind::End,
        "if" => Kind::If,
        "nil" => Kind::Nil,
        "range" => Kind::Range,
        "template" => Kind::Template,
        "with" => Kind::With,
        _ => return None,
    })
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Go prints runes in errors as `U+0023 '#'`.
fn show_rune(c: Option<char>) -> String {
    match c {
        Some(c) if c.is_control() => format!("U+{:04X}", u32::from(c)),
        Some(c) => format!("U+{:04X} '{c}'", u32::from(c)),
        None => "EOF".into(),
    }
}

struct Lexer<'a> {
    input: &'a str,
    start: usize,
    pos: usize,
    paren_depth: usize,
    items: Vec<Item>,
}

/// Lexes a whole template. The last item is `Eof` or `Error`.
pub fn lex(input: &str) -> Vec<Item> {
    let mut l = Lexer {
        input,
        start: 0,
        pos: 0,
        paren_depth: 0,
        items: Vec::new(),
    };
    l.run();
    l.items
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        self.input.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn line_at(&self, pos: usize) -> usize {
        1 + self.input.get(..pos).unwrap_or("").matches('\n').count()
    }

    fn emit(&mut self, kind: Kind) {
        let text = self
            .input
            .get(self.start..self.pos)
            .unwrap_or("")
            .to_string();
        let line = self.line_at(self.start);
        self.items.push(Item { kind, text, line });
        self.start = self.pos;
    }

    /// Ends lexing with an error item (as Go's `errorf`).
    fn error(&mut self, message: String) {
        let line = self.line_at(self.start);
        self.items.push(Item {
            kind: Kind::Error,
            text: message,
            line,
        });
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    /// ` -}}` or `}}` at the current position: (is a delimiter, has trim).
    fn at_right_delim(&self) -> (bool, bool) {
        let r = self.rest();
        let mut chars = r.chars();
        if chars.next().is_some_and(is_space) && r.get(1..).is_some_and(|s| s.starts_with("-}}")) {
            return (true, true);
        }
        (r.starts_with("}}"), false)
    }

    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) => is_space(c) || matches!(c, '.' | ',' | '|' | ':' | ')' | '(' | '}'),
        }
    }

    fn run(&mut self) {
        // Text, then actions, alternately; every state returns whether to go on.
        while self.lex_text() && self.lex_action() {}
    }

    /// Text up to the next `{{`. Returns false at the end of input.
    fn lex_text(&mut self) -> bool {
        match self.rest().find("{{") {
            Some(i) => {
                self.pos += i;
                if self.pos > self.start {
                    self.emit(Kind::Text);
                }
                true
            }
            None => {
                self.pos = self.input.len();
                if self.pos > self.start {
                    self.emit(Kind::Text);
                }
                self.emit(Kind::Eof);
                false
            }
        }
    }

    /// From `{{` to the matching `}}`. Returns false after an error.
    fn lex_action(&mut self) -> bool {
        self.pos += 2;
        let after = self.rest();
        let trim = after.starts_with('-') && after[1..].chars().next().is_some_and(is_space);
        let marker = if trim { 2 } else { 0 };
        if after.get(marker..).is_some_and(|s| s.starts_with("/*")) {
            self.pos += marker;
            self.start = self.pos;
            return self.lex_comment();
        }
        self.emit(Kind::LeftDelim);
        self.pos += marker;
        self.start = self.pos;
        self.paren_depth = 0;
        self.lex_inside_action()
    }

    fn lex_comment(&mut self) -> bool {
        self.pos += 2;
        let Some(x) = self.rest().find("*/") else {
            self.error("unclosed comment".into());
            return false;
        };
        self.pos += x + 2;
        let (delim, trim) = self.at_right_delim();
        if !delim {
            self.error("comment ends before closing delimiter".into());
            return false;
        }
        self.pos += if trim { 4 } else { 2 };
        self.start = self.pos;
        true
    }

    fn lex_right_delim(&mut self, trim: bool) {
        if trim {
            self.pos += 2;
            self.start = self.pos;
        }
        self.pos += 2;
        self.emit(Kind::RightDelim);
    }

    fn lex_inside_action(&mut self) -> bool {
        loop {
            let (delim, trim) = self.at_right_delim();
            if delim {
                if self.paren_depth == 0 {
                    self.lex_right_delim(trim);
                    return true;
                }
                self.error("unclosed left paren".into());
                return false;
            }
            if !self.lex_action_item() {
                return false;
            }
        }
    }

    /// One item inside an action. Returns false after an error.
    fn lex_action_item(&mut self) -> bool {
        let Some(c) = self.next() else {
            self.error("unclosed action".into());
            return false;
        };
        match c {
            c if is_space(c) => self.lex_space(),
            '=' => self.emit(Kind::Assign),
            '|' => self.emit(Kind::Pipe),
            ':' => {
                if self.next() != Some('=') {
                    self.error("expected :=".into());
                    return false;
                }
                self.emit(Kind::Declare);
            }
            '(' => {
                self.emit(Kind::LeftParen);
                self.paren_depth += 1;
            }
            ')' => {
                self.emit(Kind::RightParen);
                if self.paren_depth == 0 {
                    self.error(format!("unexpected right paren {}", show_rune(Some(c))));
                    return false;
                }
                self.paren_depth -= 1;
            }
            c => return self.lex_operand(c),
        }
        true
    }

    /// An item starting with `c` (consumed) that is not punctuation.
    fn lex_operand(&mut self, c: char) -> bool {
        match c {
            '"' => self.lex_quote('"', Kind::String, "unterminated quoted string"),
            '\'' => self.lex_quote('\'', Kind::CharConstant, "unterminated character constant"),
            '`' => self.lex_raw_quote(),
            '$' => self.lex_field_or_variable(Kind::Variable),
            '.' if !self.peek().is_some_and(|d| d.is_ascii_digit()) => {
                self.lex_field_or_variable(Kind::Field)
            }
            '.' | '+' | '-' | '0'..='9' => {
                self.pos -= 1;
                self.lex_number()
            }
            c if is_alphanumeric(c) => {
                self.pos -= c.len_utf8();
                self.lex_identifier()
            }
            c if c.is_ascii() && !c.is_ascii_control() => {
                self.emit(Kind::Char);
                true
            }
            c => {
                let rune = show_rune(Some(c));
                self.error(format!("unrecognized character in action: {rune}"));
                false
            }
        }
    }

    /// A run of spaces; a space that starts ` -}}` is left for the delimiter.
    fn lex_space(&mut self) {
        let mut count = 1;
        while self.peek().is_some_and(is_space) {
            self.next();
            count += 1;
        }
        if self.rest().starts_with("-}}") {
            self.pos -= 1; // Before the last space.
            if count == 1 {
                return; // The delimiter follows at once.
            }
        }
        self.emit(Kind::Space);
    }

    fn lex_quote(&mut self, close: char, kind: Kind, unterminated: &str) -> bool {
        loop {
            match self.next() {
                Some('\\') => {
                    if matches!(self.next(), None | Some('\n')) {
                        self.error(unterminated.into());
                        return false;
                    }
                }
                None | Some('\n') => {
                    self.error(unterminated.into());
                    return false;
                }
                Some(c) if c == close => break,
                Some(_) => {}
            }
        }
        self.emit(kind);
        true
    }

    fn lex_raw_quote(&mut self) -> bool {
        match self.rest().find('`') {
            Some(i) => {
                self.pos += i + 1;
                self.emit(Kind::RawString);
                true
            }
            None => {
                self.error("unterminated raw quoted string".into());
                false
            }
        }
    }

    /// `$x` or `.Field` (the `$` or `.` is consumed); a lone one is `$`/dot.
    fn lex_field_or_variable(&mut self, kind: Kind) -> bool {
        if self.at_terminator() {
            self.emit(if kind == Kind::Variable {
                Kind::Variable
            } else {
                Kind::Dot
            });
            return true;
        }
        while self.peek().is_some_and(is_alphanumeric) {
            self.next();
        }
        if !self.at_terminator() {
            let bad = self.peek();
            self.next();
            self.error(format!("bad character {}", show_rune(bad)));
            return false;
        }
        self.emit(kind);
        true
    }

    fn lex_identifier(&mut self) -> bool {
        while self.peek().is_some_and(is_alphanumeric) {
            self.next();
        }
        if !self.at_terminator() {
            let bad = self.peek();
            self.error(format!("bad character {}", show_rune(bad)));
            return false;
        }
        let word = self.input.get(self.start..self.pos).unwrap_or("");
        let kind = match word {
            "true" | "false" => Kind::Bool,
            w => keyword(w).unwrap_or(Kind::Identifier),
        };
        self.emit(kind);
        true
    }

    fn lex_number(&mut self) -> bool {
        if !self.scan_number() {
            let text = self.input.get(self.start..self.pos).unwrap_or("");
            self.error(format!("bad number syntax: {text:?}"));
            return false;
        }
        if matches!(self.peek(), Some('+' | '-')) {
            // A complex number: `1+2i`, no spaces, ends in `i`.
            if !self.scan_number() || !self.input[..self.pos].ends_with('i') {
                let text = self.input.get(self.start..self.pos).unwrap_or("");
                self.error(format!("bad number syntax: {text:?}"));
                return false;
            }
            self.emit(Kind::Complex);
        } else {
            self.emit(Kind::Number);
        }
        true
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if self.peek().is_some_and(is_alphanumeric) {
            self.next();
            return false;
        }
        true
    }
}
