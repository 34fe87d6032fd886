//! The lexer: template text split into text and actions, trim markers (`{{- -}}`) applied,
//! comments dropped, and each action's tokens.

use crate::Error;

/// One token inside an action.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// `.Name` (one link of a field chain).
    Field(String),
    Dot,
    /// `$name`, or `$` alone.
    Var(String),
    Ident(String),
    Str(String),
    /// A number literal's text (or a character literal's code point).
    Number(String),
    Char(char),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Space,
}

/// Text between actions, or one action's tokens with the line it starts on and its source.
#[derive(Debug)]
pub(crate) enum Item {
    Text(String),
    Action {
        toks: Vec<Tok>,
        line: usize,
        src: String,
    },
}

pub(crate) fn lex(input: &str) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    while pos <= input.len() {
        let rest = &input[pos..];
        let start = rest.find("{{").unwrap_or(rest.len());
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let left_trim = rest[start..].starts_with("{{-")
            && rest[start + 3..].starts_with(|c: char| is_space(c));
        if left_trim {
            text = text.trim_end_matches(is_space);
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        if start == rest.len() {
            break;
        }
        let body_start = pos + start + if left_trim { 3 } else { 2 };
        let line = input[..pos + start].matches('\n').count() + 1;
        let (end, right_trim, toks) = action(input, body_start, line)?;
        if let Some(toks) = toks {
            let src = input[pos + start..end].to_string();
            items.push(Item::Action { toks, line, src });
        }
        trim_next = right_trim;
        pos = end;
    }
    Ok(items)
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Lexes one action from `at` (just after `{{` or `{{- `): returns the offset after `}}`,
/// whether it ends with a trim marker, and its tokens (`None` for a comment).
fn action(input: &str, at: usize, line: usize) -> Result<(usize, bool, Option<Vec<Tok>>), Error> {
    let body = &input[at..];
    let trimmed = body.trim_start_matches(is_space);
    if trimmed.starts_with("/*") {
        let comment_start = at + body.len() - trimmed.len();
        let close = trimmed
            .find("*/")
            .ok_or_else(|| Error::parse(line, "unclosed comment"))?;
        let after = &input[comment_start + close + 2..];
        return match close_delim(after) {
            Some((len, trim)) => Ok((comment_start + close + 2 + len, trim, None)),
            None => Err(Error::parse(line, "comment ends before closing delimiter")),
        };
    }
    let mut lexer = ActionLexer {
        src: input,
        pos: at,
        line,
        toks: Vec::new(),
    };
    let (end, trim) = lexer.run()?;
    Ok((end, trim, Some(lexer.toks)))
}

/// `}}` or ` -}}` at the start of `s` (after optional spaces): its length and trim flag.
fn close_delim(s: &str) -> Option<(usize, bool)> {
    let trimmed = s.trim_start_matches(is_space);
    let spaces = s.len() - trimmed.len();
    if spaces > 0 && trimmed.starts_with("-}}") {
        return Some((spaces + 3, true));
    }
    if trimmed.starts_with("}}") {
        return Some((spaces + 2, false));
    }
    None
}

struct ActionLexer<'s> {
    src: &'s str,
    pos: usize,
    line: usize,
    toks: Vec<Tok>,
}

impl ActionLexer<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn err(&self, msg: impl Into<String>) -> Error {
        Error::parse(self.line, msg)
    }

    fn run(&mut self) -> Result<(usize, bool), Error> {
        loop {
            if let Some((len, trim)) = close_delim(self.rest()) {
                return Ok((self.pos + len, trim));
            }
            let Some(c) = self.rest().chars().next() else {
                return Err(self.err("unclosed action"));
            };
            self.token(c)?;
        }
    }

    fn push(&mut self, tok: Tok, len: usize) {
        self.toks.push(tok);
        self.pos += len;
    }

    fn token(&mut self, c: char) -> Result<(), Error> {
        let next = self.rest()[c.len_utf8()..].chars().next();
        match c {
            c if is_space(c) => {
                let len = self.rest().len() - self.rest().trim_start_matches(is_space).len();
                self.push(Tok::Space, len);
            }
            '|' => self.push(Tok::Pipe, 1),
            '(' => self.push(Tok::LParen, 1),
            ')' => self.push(Tok::RParen, 1),
            ',' => self.push(Tok::Comma, 1),
            '=' => self.push(Tok::Assign, 1),
            ':' if next == Some('=') => self.push(Tok::Declare, 2),
            '"' => self.quoted()?,
            '`' => self.raw()?,
            '\'' => self.char_lit()?,
            '$' => {
                let name = self.word(1);
                self.push(Tok::Var(format!("${name}")), 1 + name.len());
            }
            '.' if next.is_some_and(|n| n.is_ascii_digit()) => self.number(),
            '.' => {
                let name = self.word(1);
                let tok = if name.is_empty() {
                    Tok::Dot
                } else {
                    Tok::Field(name.clone())
                };
                self.push(tok, 1 + name.len());
            }
            c if c.is_ascii_digit() => self.number(),
            '-' | '+' if next.is_some_and(|n| n.is_ascii_digit() || n == '.') => self.number(),
            c if c.is_alphabetic() || c == '_' => {
                let name = self.word(0);
                self.push(Tok::Ident(name.clone()), name.len());
            }
            c => return Err(self.err(format!("unexpected {c:?} in action"))),
        }
        Ok(())
    }

    /// The alphanumeric word starting `skip` bytes ahead.
    fn word(&self, skip: usize) -> String {
        self.rest()[skip..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    }

    fn number(&mut self) {
        let text: String = self
            .rest()
            .char_indices()
            .take_while(|(i, c)| {
                c.is_ascii_alphanumeric()
                    || matches!(c, '.' | '_')
                    || (*i == 0 && "+-".contains(*c))
                    || ("+-".contains(*c) && self.exponent_sign_at(*i))
            })
            .map(|(_, c)| c)
            .collect();
        let len = text.len();
        self.push(Tok::Number(text), len);
    }

    /// Whether the sign at byte `i` of the rest follows a decimal exponent letter.
    fn exponent_sign_at(&self, i: usize) -> bool {
        let rest = self.rest();
        i > 0 && matches!(&rest[i - 1..i], "e" | "E") && !rest.starts_with("0x")
    }

    fn quoted(&mut self) -> Result<(), Error> {
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.push(Tok::Str(out), i + 1);
                    return Ok(());
                }
                '\n' => break,
                '\\' => {
                    let (_, e) = chars
                        .next()
                        .ok_or_else(|| self.err("unterminated quoted string"))?;
                    out.push(self.escape(e, &mut chars)?);
                }
                c => out.push(c),
            }
        }
        Err(self.err("unterminated quoted string"))
    }

    fn escape(
        &self,
        e: char,
        chars: &mut impl Iterator<Item = (usize, char)>,
    ) -> Result<char, Error> {
        let hex = |n: usize, chars: &mut dyn Iterator<Item = (usize, char)>| {
            let digits: String = chars.take(n).map(|(_, c)| c).collect();
            u32::from_str_radix(&digits, 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| self.err(format!("bad escape \\{e}{digits}")))
        };
        Ok(match e {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'v' => '\u{b}',
            '\\' | '"' | '\'' => e,
            'x' => hex(2, chars)?,
            'u' => hex(4, chars)?,
            'U' => hex(8, chars)?,
            other => return Err(self.err(format!("unknown escape sequence \\{other}"))),
        })
    }

    fn raw(&mut self) -> Result<(), Error> {
        let body = &self.rest()[1..];
        let end = body
            .find('`')
            .ok_or_else(|| self.err("unterminated raw quoted string"))?;
        let text = body[..end].to_string();
        self.push(Tok::Str(text), end + 2);
        Ok(())
    }

    fn char_lit(&mut self) -> Result<(), Error> {
        let mut chars = self.rest().char_indices().skip(1);
        let c = match chars.next() {
            Some((_, '\\')) => {
                let (_, e) = chars
                    .next()
                    .ok_or_else(|| self.err("unterminated character constant"))?;
                self.escape(e, &mut chars)?
            }
            Some((_, c)) if c != '\'' => c,
            _ => return Err(self.err("empty character constant")),
        };
        match chars.next() {
            Some((i, '\'')) => {
                self.push(Tok::Char(c), i + 1);
                Ok(())
            }
            _ => Err(self.err("unterminated character constant")),
        }
    }
}
