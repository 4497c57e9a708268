//! `docs/configuration.md`, the configuration reference, is generated from the `///` comments
//! of the config structs (`src/config/*.rs`, `src/relay/config.rs`): one table per section
//! (key, type, default, meaning). This test fails when the file is not what the generator
//! writes; `UPDATE_DOCS=1 cargo test -p gitea-nats-sourcer-assets` writes it.
//!
//! The parser is line-based and knows the shapes those files use: `///` lines, `#[serde(..)]`
//! attributes (`default`, `default = "fn"`, `rename`, `deserialize_with`), `pub field: Type,`
//! lines, enums with a `#[default]` variant, and `fn default_x() -> T { expr }` functions
//! whose expression is a literal, `"text".into()`, `Duration::from_secs(..)` or an integer
//! expression of literals and constants (`2 << 30`, `crate::store::cursor::MAX_SEEN`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

const OUT: &str = "docs/configuration.md";

const HEADER: &str = "# Configuration reference

Generated from the `///` comments of the config structs in `src/config/` and
`src/relay/config.rs` by `crates/assets/tests/configuration.rs`; do not edit it by hand.
After changing a config struct, regenerate it with
`UPDATE_DOCS=1 cargo test -p gitea-nats-sourcer-assets` (the test fails while it is stale).

See `config.example.toml`. Unknown keys are errors that name the key; durations are strings
like `\"500ms\"`, `\"30s\"`, `\"5m\"`. Every secret file the config names is read at start: a
missing or unreadable one is a config error (exit 2) naming the key and the path. Settings
that are legal but risky (a `poll.lookback` under a minute, a `nats.duplicate_window` under
an hour) are logged as warnings at start.
";

/// One field of a config struct.
#[derive(Debug, Default, Clone)]
struct Field {
    name: String,
    ty: String,
    doc: Vec<String>,
    attrs: Vec<String>,
}

/// One config struct: its doc and fields.
#[derive(Debug, Default, Clone)]
struct Struct {
    doc: Vec<String>,
    fields: Vec<Field>,
}

/// An enum: its `serde(rename_all)` and its `#[default]` variant.
#[derive(Debug, Default, Clone)]
struct Enum {
    rename_all: Option<String>,
    default: Option<String>,
}

/// What one source file declares.
#[derive(Debug, Default)]
struct Parsed {
    structs: HashMap<String, Struct>,
    enums: HashMap<String, Enum>,
    /// `fn NAME() -> T { EXPR }`: NAME to EXPR.
    defaults: HashMap<String, String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Counts `(` minus `)` outside string literals.
fn paren_depth(s: &str) -> i32 {
    let mut depth = 0;
    let mut in_str = false;
    for c in s.chars() {
        match c {
            '"' => in_str = !in_str,
            '(' if !in_str => depth += 1,
            ')' if !in_str => depth -= 1,
            _ => {}
        }
    }
    depth
}

fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut doc: Vec<String> = Vec::new();
    let mut attrs: Vec<String> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        i += 1;
        if let Some(d) = line.strip_prefix("///") {
            doc.push(d.trim().to_string());
            continue;
        }
        if line.starts_with("#[") {
            let mut attr = line.to_string();
            while paren_depth(&attr) > 0 && i < lines.len() {
                attr.push(' ');
                attr.push_str(lines[i].trim());
                i += 1;
            }
            attrs.push(attr);
            continue;
        }
        if let Some(rest) = line.strip_prefix("pub struct ")
            && let Some(name) = rest.strip_suffix(" {")
        {
            let mut s = Struct {
                doc: std::mem::take(&mut doc),
                fields: Vec::new(),
            };
            attrs.clear();
            while i < lines.len() && lines[i] != "}" {
                let l = lines[i].trim();
                i += 1;
                if let Some(d) = l.strip_prefix("///") {
                    doc.push(d.trim().to_string());
                } else if l.starts_with("#[") {
                    let mut attr = l.to_string();
                    while paren_depth(&attr) > 0 && i < lines.len() {
                        attr.push(' ');
                        attr.push_str(lines[i].trim());
                        i += 1;
                    }
                    attrs.push(attr);
                } else if let Some(f) = l.strip_prefix("pub ")
                    && let Some((fname, ty)) = f.split_once(": ")
                {
                    s.fields.push(Field {
                        name: fname.to_string(),
                        ty: ty.trim_end_matches(',').to_string(),
                        doc: std::mem::take(&mut doc),
                        attrs: std::mem::take(&mut attrs),
                    });
                }
            }
            out.structs.insert(name.to_string(), s);
            continue;
        }
        if let Some(rest) = line.strip_prefix("pub enum ")
            && let Some(name) = rest.strip_suffix(" {")
        {
            let mut e = Enum {
                rename_all: attrs.iter().find_map(|a| quoted_after(a, "rename_all = ")),
                default: None,
            };
            let mut is_default = false;
            while i < lines.len() && lines[i] != "}" {
                let l = lines[i].trim();
                i += 1;
                if l == "#[default]" {
                    is_default = true;
                } else if !l.starts_with("//") && !l.starts_with("#[") && !l.is_empty() {
                    if is_default {
                        let variant = l.split(['(', ',', ' ']).next().unwrap_or(l);
                        e.default = Some(variant.to_string());
                    }
                    is_default = false;
                }
            }
            out.enums.insert(name.to_string(), e);
        } else if let Some(rest) = line.strip_prefix("fn ")
            && let Some((name, sig)) = rest.split_once("()")
            && sig.trim_start().starts_with("->")
            && sig.ends_with('{')
        {
            let mut body = Vec::new();
            while i < lines.len() && lines[i] != "}" {
                body.push(lines[i].trim());
                i += 1;
            }
            out.defaults.insert(name.to_string(), body.join(" "));
        }
        doc.clear();
        attrs.clear();
    }
    out
}

/// The `"..."` value after `key` in an attribute.
fn quoted_after(attr: &str, key: &str) -> Option<String> {
    let rest = &attr[attr.find(key)? + key.len()..];
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

/// Whether a `#[serde(..)]` attribute of the field says `default` without a function.
fn has_plain_default(attrs: &[String]) -> bool {
    attrs.iter().any(|a| {
        a.starts_with("#[serde(")
            && a.trim_start_matches("#[serde(")
                .trim_end_matches(")]")
                .split(',')
                .any(|p| p.trim() == "default")
    })
}

fn serde_value(attrs: &[String], key: &str) -> Option<String> {
    attrs
        .iter()
        .filter(|a| a.starts_with("#[serde("))
        .find_map(|a| quoted_after(a, &format!("{key} = ")))
}

/// `pub const NAME: T = EXPR;` anywhere below `src/`.
fn constants(dir: &Path, out: &mut HashMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            constants(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("pub const ")
                    && let Some((name, rest)) = rest.split_once(':')
                    && let Some((_, expr)) = rest.split_once('=')
                {
                    out.insert(
                        name.trim().to_string(),
                        expr.trim().trim_end_matches(';').to_string(),
                    );
                }
            }
        }
    }
}

/// Evaluates an integer expression of literals, constants, `*` and `<<`.
fn eval_int(expr: &str, consts: &HashMap<String, String>) -> Option<u64> {
    let expr = expr.trim();
    if let Some((a, b)) = expr.split_once("<<") {
        return Some(eval_int(a, consts)? << eval_int(b, consts)?);
    }
    if let Some((a, b)) = expr.split_once('*') {
        return eval_int(a, consts)?.checked_mul(eval_int(b, consts)?);
    }
    if let Ok(n) = expr.replace('_', "").parse() {
        return Some(n);
    }
    let name = expr.rsplit("::").next()?;
    eval_int(consts.get(name)?, consts)
}

/// Seconds as a duration string (`"30s"`, `"5m"`, `"2h"`, `"30days"`).
fn human_secs(s: u64) -> String {
    match s {
        0 => "0s".into(),
        86400 => "1day".into(),
        s if s.is_multiple_of(86400) => format!("{}days", s / 86400),
        s if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        s if s.is_multiple_of(60) => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn human_bytes(n: u64) -> String {
    for (unit, size) in [("TiB", 1u64 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)] {
        if n >= size && n.is_multiple_of(size) {
            return format!("{}{unit}", n / size);
        }
    }
    n.to_string()
}

/// The default of a `fn default_x()` body, as written in TOML.
fn render_default(expr: &str, field: &Field, consts: &HashMap<String, String>) -> String {
    let expr = expr.trim();
    if let Some(s) = expr.strip_suffix(".into()") {
        return format!("`{s}`");
    }
    if let Some(inner) = expr
        .strip_prefix("Duration::from_secs(")
        .and_then(|e| e.strip_suffix(')'))
        && let Some(s) = eval_int(inner, consts)
    {
        return format!("`\"{}\"`", human_secs(s));
    }
    if let Some(n) = eval_int(expr, consts) {
        if serde_value(&field.attrs, "deserialize_with").as_deref() == Some("byte_size") {
            return format!("`\"{}\"`", human_bytes(n));
        }
        return format!("`{n}`");
    }
    format!("`{expr}`")
}

/// `Option<T>` → `T`, else the type.
fn unwrap_option(ty: &str) -> (bool, &str) {
    match ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')) {
        Some(inner) => (true, inner),
        None => (false, ty),
    }
}

fn is_enum(ty: &str, all: &Parsed) -> bool {
    all.enums.contains_key(ty)
}

fn enum_default(ty: &str, all: &Parsed) -> Option<String> {
    let e = all.enums.get(ty)?;
    let v = e.default.as_deref()?;
    Some(match e.rename_all.as_deref() {
        Some("UPPERCASE") => v.to_uppercase(),
        _ => v.to_lowercase(),
    })
}

fn toml_type(field: &Field, all: &Parsed) -> String {
    let (_, ty) = unwrap_option(&field.ty);
    match serde_value(&field.attrs, "deserialize_with").as_deref() {
        Some(d) if d.ends_with("duration") => return "duration".into(),
        Some("byte_size") => return "size".into(),
        _ => {}
    }
    if let Some(inner) = ty.strip_prefix("Vec<").and_then(|t| t.strip_suffix('>')) {
        return match inner {
            "String" => "array of strings".into(),
            t if is_enum(t, all) => "array of strings".into(),
            t => format!("array of {t}"),
        };
    }
    match ty {
        "String" => "string".into(),
        "PathBuf" => "path".into(),
        "Secret" => "string (secret)".into(),
        "bool" => "boolean".into(),
        "u32" | "u64" | "usize" => "integer".into(),
        "f64" => "number".into(),
        t if t.ends_with("SocketAddr") => "address".into(),
        t if is_enum(t, all) => "string".into(),
        t => format!("`{t}`"),
    }
}

fn default_of(
    field: &Field,
    file: &Parsed,
    all: &Parsed,
    consts: &HashMap<String, String>,
) -> String {
    if let Some(f) = serde_value(&field.attrs, "default") {
        return match file.defaults.get(&f) {
            Some(expr) => render_default(expr, field, consts),
            None => format!("`{f}()`"),
        };
    }
    let (optional, ty) = unwrap_option(&field.ty);
    if optional {
        return "none".into();
    }
    if !has_plain_default(&field.attrs) {
        return "required".into();
    }
    if ty.starts_with("Vec<") {
        return "`[]`".into();
    }
    match ty {
        "bool" => "`false`".into(),
        "Duration" => "`\"0s\"`".into(),
        "u32" | "u64" | "usize" => "`0`".into(),
        t => match enum_default(t, all) {
            Some(v) => format!("`\"{v}\"`"),
            None => "see its type".into(),
        },
    }
}

/// Doc lines joined into one table cell: intra-doc links become code, `|` is escaped.
fn cell(doc: &[String]) -> String {
    let text = doc.join(" ");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("[`") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find("`]") {
            Some(end) if !after[end + 2..].starts_with('(') => {
                out.push_str(&after[..end + 1]);
                rest = &after[end + 2..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.trim().replace('|', "\\|")
}

/// The table of one section (`heading` such as `[gitea]` or `[[source]]`).
fn table(
    out: &mut String,
    s: &Struct,
    file: &Parsed,
    all: &Parsed,
    consts: &HashMap<String, String>,
) {
    out.push_str("| key | type | default | meaning |\n| --- | --- | --- | --- |\n");
    for f in &s.fields {
        let key = serde_value(&f.attrs, "rename").unwrap_or_else(|| f.name.clone());
        assert!(
            !f.doc.is_empty(),
            "{key}: a config field without a `///` comment"
        );
        out.push_str(&format!(
            "| `{key}` | {} | {} | {} |\n",
            toml_type(f, all),
            default_of(f, file, all, consts),
            cell(&f.doc)
        ));
    }
}

/// The sections of a config file whose top struct is `top`; `known` sections are only
/// referred to (the relay's `[nats]`, `[http]`, `[log]` are the sourcer's).
fn sections(
    out: &mut String,
    top: &str,
    files: &[(String, Parsed)],
    all: &Parsed,
    consts: &HashMap<String, String>,
    known: &[String],
    level: &str,
) -> Vec<String> {
    let file_of = |name: &str| {
        files
            .iter()
            .find(|(_, p)| p.structs.contains_key(name))
            .map(|(_, p)| p)
            .unwrap_or_else(|| panic!("struct {name} not found"))
    };
    let top_file = file_of(top);
    let root = &top_file.structs[top];
    let is_section = |f: &Field| {
        let ty = f.ty.strip_prefix("Vec<").and_then(|t| t.strip_suffix('>'));
        all.structs.contains_key(ty.unwrap_or(&f.ty))
    };
    let scalars = Struct {
        doc: Vec::new(),
        fields: root
            .fields
            .iter()
            .filter(|f| !is_section(f))
            .cloned()
            .collect(),
    };
    if !scalars.fields.is_empty() {
        out.push_str(&format!("\n{level} Top-level keys\n\n"));
        table(out, &scalars, top_file, all, consts);
    }
    let mut written = Vec::new();
    for f in root.fields.iter().filter(|f| is_section(f)) {
        let key = serde_value(&f.attrs, "rename").unwrap_or_else(|| f.name.clone());
        let (array, ty) = match f.ty.strip_prefix("Vec<").and_then(|t| t.strip_suffix('>')) {
            Some(inner) => (true, inner),
            None => (false, f.ty.as_str()),
        };
        let heading = if array {
            format!("[[{key}]]")
        } else {
            format!("[{key}]")
        };
        out.push_str(&format!("\n{level} `{heading}`\n\n"));
        if known.contains(&heading) {
            out.push_str(&format!(
                "{}. The same table as the sourcer's `{heading}` above: the same keys and checks.\n",
                cell(&f.doc).trim_end_matches('.')
            ));
            continue;
        }
        let s = &file_of(ty).structs[ty];
        out.push_str(&format!("{}\n\n", cell(&s.doc)));
        table(out, s, file_of(ty), all, consts);
        written.push(heading);
    }
    written
}

fn generate() -> String {
    let root = root();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join("src/config"))
        .expect("src/config")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    paths.sort();
    paths.push(root.join("src/relay/config.rs"));
    let files: Vec<(String, Parsed)> = paths
        .iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), parse(&text))
        })
        .collect();
    let mut all = Parsed::default();
    for (_, p) in &files {
        all.structs.extend(p.structs.clone());
        all.enums.extend(p.enums.clone());
    }
    let mut consts = HashMap::new();
    constants(&root.join("src"), &mut consts);

    let mut out = String::from(HEADER);
    out.push_str("\n## The sourcer (`config.toml`)\n\n");
    out.push_str(&format!("{}\n", cell(&all.structs["Config"].doc)));
    let known = sections(&mut out, "Config", &files, &all, &consts, &[], "###");
    out.push_str("\n## The relay (`relay.toml`)\n\n");
    out.push_str(&format!(
        "{} See `relay.example.toml`.\n",
        cell(&all.structs["RelayConfig"].doc)
    ));
    sections(
        &mut out,
        "RelayConfig",
        &files,
        &all,
        &consts,
        &known,
        "###",
    );
    out
}

#[test]
fn the_configuration_reference_is_what_the_config_structs_say() {
    let want = generate();
    let path = root().join(OUT);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).expect("write docs/configuration.md");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        let line = have
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .map_or(have.lines().count().min(want.lines().count()), |n| n)
            + 1;
        panic!(
            "{OUT} is not what the config structs' `///` comments say (first difference at \
             line {line}); regenerate it with `UPDATE_DOCS=1 cargo test -p gitea-nats-sourcer-assets`"
        );
    }
}
