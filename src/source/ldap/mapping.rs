//! How an entry becomes a person: attributes into the person shape, groups, disabled
//! accounts, GUIDs and DNs. No I/O.

#[allow(clippy::wildcard_imports)]
use super::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use ldap3::SearchEntry;
use serde_json::{Map, Value};

use super::{RecordError, Snapshot, parse_record, snapshot_from};

/// How an entry becomes a person (no I/O, unit-tested).
#[derive(Debug, Clone)]
pub(super) struct Mapping {
    pub(super) id_attribute: String,
    pub(super) id_format: IdFormat,
    pub(super) email: String,
    pub(super) username: String,
    pub(super) first_name: String,
    pub(super) last_name: String,
    pub(super) phone: String,
    pub(super) start_date: Option<String>,
    pub(super) end_date: Option<String>,
    pub(super) attributes: BTreeMap<String, String>,
    pub(super) groups: Groups,
    pub(super) group_name: GroupName,
    pub(super) active: Active,
}

/// One entry's DN and its attributes (names lowercased; values as bytes, binary or not).
#[derive(Debug, Clone, Default)]
pub(super) struct Entry {
    pub(super) dn: String,
    pub(super) attrs: HashMap<String, Vec<Vec<u8>>>,
}

impl From<SearchEntry> for Entry {
    fn from(e: SearchEntry) -> Self {
        let mut attrs: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
        for (name, values) in e.attrs {
            attrs
                .entry(name.to_ascii_lowercase())
                .or_default()
                .extend(values.into_iter().map(String::into_bytes));
        }
        for (name, values) in e.bin_attrs {
            attrs
                .entry(name.to_ascii_lowercase())
                .or_default()
                .extend(values);
        }
        Self { dn: e.dn, attrs }
    }
}

impl Entry {
    pub(super) fn values(&self, attr: &str) -> &[Vec<u8>] {
        self.attrs
            .get(&attr.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    /// The first non-blank value as text.
    pub(super) fn text(&self, attr: &str) -> Option<String> {
        self.values(attr)
            .iter()
            .map(|v| String::from_utf8_lossy(v).trim().to_string())
            .find(|s| !s.is_empty())
    }

    /// Whether the server sent `attr` in ranges (`member;range=0-1499`, AD) instead of
    /// whole.
    pub(super) fn ranged(&self, attr: &str) -> bool {
        let prefix = format!("{};range=", attr.to_ascii_lowercase());
        self.attrs.keys().any(|k| k.starts_with(&prefix))
    }

    pub(super) fn texts(&self, attr: &str) -> Vec<String> {
        self.values(attr)
            .iter()
            .map(|v| String::from_utf8_lossy(v).trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// Which groups each member (a normalized DN, or a plain user name) is in.
pub(super) type GroupIndex = HashMap<String, BTreeSet<String>>;

impl Mapping {
    pub(super) fn requested_attributes(&self) -> Vec<String> {
        let mut attrs = vec![
            self.id_attribute.clone(),
            self.email.clone(),
            self.username.clone(),
            self.first_name.clone(),
            self.last_name.clone(),
            self.phone.clone(),
        ];
        attrs.extend(self.start_date.iter().chain(&self.end_date).cloned());
        attrs.extend(self.attributes.values().cloned());
        if let Groups::MemberOf(a) = &self.groups {
            attrs.push(a.clone());
        }
        match &self.active {
            Active::Ad => attrs.push("userAccountControl".into()),
            Active::Attribute { attribute, .. } => attrs.push(attribute.clone()),
            Active::All => {}
        }
        let mut seen = BTreeSet::new();
        attrs.retain(|a| seen.insert(a.to_ascii_lowercase()));
        attrs
    }

    /// # Errors
    /// A group whose members the server sent only in part (AD's ranged retrieval of
    /// large multi-valued attributes): membership would be incomplete.
    pub(super) fn group_index(&self, groups: &[Entry]) -> Result<GroupIndex, LdapError> {
        let Groups::Search {
            member_attribute, ..
        } = &self.groups
        else {
            return Ok(GroupIndex::new());
        };
        let mut index = GroupIndex::new();
        for g in groups {
            if g.ranged(member_attribute) {
                return Err(LdapError(format!(
                    "group {} lists its `{member_attribute}` values in ranges (more than the \
                     server returns at once, e.g. AD's 1500); its membership cannot be read \
                     completely with a group search: use group_attribute = \"memberOf\" \
                     instead of group_base_dn",
                    g.dn
                )));
            }
            let name = self.group_display(&g.dn);
            for member in g.texts(member_attribute) {
                let key = if member.contains('=') {
                    normalize_dn(&member)
                } else {
                    member.to_lowercase()
                };
                index.entry(key).or_default().insert(name.clone());
            }
        }
        Ok(index)
    }

    pub(super) fn group_display(&self, dn: &str) -> String {
        match self.group_name {
            GroupName::Dn => dn.trim().to_string(),
            GroupName::Cn => first_rdn_value(dn).unwrap_or_else(|| dn.trim().to_string()),
        }
    }

    /// # Errors
    /// Group data that cannot be read completely (see `group_index`).
    pub(super) fn snapshot(
        &self,
        users: &[Entry],
        groups: Option<&[Entry]>,
    ) -> Result<Snapshot, LdapError> {
        let index = groups.map(|g| self.group_index(g)).transpose()?;
        Ok(snapshot_from(users.iter().map(|entry| {
            let parsed = self
                .to_record(entry, index.as_ref())
                .and_then(|v| parse_record(&v));
            (format!("entry {}", entry.dn), parsed)
        })))
    }

    /// The JSON person shape of one entry; an error keeps what can protect the person.
    pub(super) fn to_record(
        &self,
        e: &Entry,
        index: Option<&GroupIndex>,
    ) -> Result<Value, RecordError> {
        let email = e.text(&self.email);
        let fail = |id: Option<String>, message: String| RecordError {
            id,
            email: email.clone(),
            message,
        };
        let id = self.id(e).map_err(|m| fail(None, m))?;
        let mut obj = Map::new();
        obj.insert("id".into(), Value::String(id.clone()));
        for (field, attr) in [
            ("email", &self.email),
            ("username", &self.username),
            ("first_name", &self.first_name),
            ("last_name", &self.last_name),
            ("phone", &self.phone),
        ] {
            if let Some(v) = e.text(attr) {
                obj.insert(field.into(), Value::String(v));
            }
        }
        for (field, attr) in [
            ("start_date", &self.start_date),
            ("end_date", &self.end_date),
        ] {
            if let Some(v) = attr.as_ref().and_then(|a| e.text(a)) {
                obj.insert(field.into(), Value::String(generalized_time(&v)));
            }
        }
        let active = match &self.active {
            Active::All => true,
            Active::Ad => {
                let Some(raw) = e.text("userAccountControl") else {
                    return Err(fail(
                        Some(id),
                        "no userAccountControl (is it readable by the bind DN?); cannot tell \
                         whether the account is disabled"
                            .into(),
                    ));
                };
                let flags: i64 = raw.parse().map_err(|_| {
                    fail(
                        Some(id.clone()),
                        format!("userAccountControl `{raw}` is not a number"),
                    )
                })?;
                flags & UF_ACCOUNTDISABLE == 0
            }
            Active::Attribute { attribute, values } => !e.texts(attribute).iter().any(|v| {
                values
                    .iter()
                    .any(|want| want == "*" || *want == v.to_lowercase())
            }),
        };
        obj.insert("active".into(), Value::Bool(active));
        let mut groups = BTreeSet::new();
        match (&self.groups, index) {
            (Groups::MemberOf(attr), _) if e.ranged(attr) => {
                return Err(fail(
                    Some(id),
                    format!(
                        "`{attr}` came in ranges (too many values to return at once); the \
                         groups cannot be read completely"
                    ),
                ));
            }
            (Groups::MemberOf(attr), _) => {
                groups.extend(e.texts(attr).iter().map(|dn| self.group_display(dn)));
            }
            (Groups::Search { .. }, Some(index)) => {
                if let Some(g) = index.get(&normalize_dn(&e.dn)) {
                    groups.extend(g.iter().cloned());
                }
                if let Some(name) = e.text(&self.username)
                    && let Some(g) = index.get(&name.to_lowercase())
                {
                    groups.extend(g.iter().cloned());
                }
            }
            _ => {}
        }
        groups.retain(|g| !g.is_empty());
        if !groups.is_empty() {
            obj.insert(
                "groups".into(),
                Value::Array(groups.into_iter().map(Value::String).collect()),
            );
        }
        let attributes: Map<String, Value> = self
            .attributes
            .iter()
            .filter_map(|(name, attr)| e.text(attr).map(|v| (name.clone(), Value::String(v))))
            .collect();
        if !attributes.is_empty() {
            obj.insert("attributes".into(), Value::Object(attributes));
        }
        Ok(Value::Object(obj))
    }

    fn id(&self, e: &Entry) -> Result<String, String> {
        let attr = &self.id_attribute;
        let values = e.values(attr);
        let first = match values {
            [] => return Err(format!("no `{attr}` attribute (the id)")),
            [one] => one,
            more => {
                return Err(format!(
                    "`{attr}` (the id) has {} values, expected one",
                    more.len()
                ));
            }
        };
        match self.id_format {
            IdFormat::Guid => guid_text(first).ok_or_else(|| {
                format!(
                    "`{attr}` is not a GUID ({} bytes; expected 16 bytes or GUID text)",
                    first.len()
                )
            }),
            IdFormat::Text => match std::str::from_utf8(first) {
                Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                Ok(_) => Err(format!("`{attr}` (the id) is empty")),
                Err(_) => Err(format!(
                    "`{attr}` (the id) is binary; set id_format = \"guid\" if it is a GUID"
                )),
            },
        }
    }
}

/// LDAP's GeneralizedTime (RFC 4517: `YYYYMMDDHH[MM[SS]][.fff](Z|±HH[MM])`, e.g.
/// `20260301000000Z`) as RFC 3339 text, and a bare `YYYYMMDD` as a date; anything else is
/// returned as it is, for the person's validation to accept (ISO 8601 text) or name.
pub(super) fn generalized_time(v: &str) -> String {
    let t = v.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (body, rest) = t.split_at(digits);
    if digits == 8 && rest.is_empty() {
        return format!("{}-{}-{}", &body[..4], &body[4..6], &body[6..8]);
    }
    if !matches!(digits, 10 | 12 | 14) {
        return t.to_string();
    }
    // A fraction (of the last unit given; only seconds' is kept, minutes' and hours'
    // are dropped: a start date does not need them).
    let (fraction, zone) = match rest.strip_prefix(['.', ',']) {
        Some(f) => {
            let n = f.bytes().take_while(u8::is_ascii_digit).count();
            (&f[..n], &f[n..])
        }
        None => ("", rest),
    };
    let offset = match zone {
        "Z" | "z" => "Z".to_string(),
        z if z.len() == 5
            && z.starts_with(['+', '-'])
            && z[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{}:{}", &z[..3], &z[3..])
        }
        z if z.len() == 3
            && z.starts_with(['+', '-'])
            && z[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{z}:00")
        }
        // No zone: local time of the server; not a moment roster can place.
        _ => return t.to_string(),
    };
    let part = |i: usize| body.get(i..i + 2).unwrap_or("00");
    let seconds_fraction = if digits == 14 && !fraction.is_empty() {
        format!(".{fraction}")
    } else {
        String::new()
    };
    format!(
        "{}-{}-{}T{}:{}:{}{seconds_fraction}{offset}",
        &body[..4],
        &body[4..6],
        &body[6..8],
        part(8),
        part(10),
        part(12)
    )
}

/// A binary GUID as AD shows it: the first three groups are little-endian, e.g. bytes
/// `00 01 02 … 0f` → `03020100-0504-0706-0809-0a0b0c0d0e0f`. Text that already is a GUID
/// (with or without braces) is normalized to the same form.
pub(super) fn guid_text(raw: &[u8]) -> Option<String> {
    if let [a0, a1, a2, a3, b0, b1, c0, c1, rest @ ..] = raw
        && rest.len() == 8
    {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        return Some(format!(
            "{}-{}-{}-{}-{}",
            hex(&[*a3, *a2, *a1, *a0]),
            hex(&[*b1, *b0]),
            hex(&[*c1, *c0]),
            hex(&rest[..2]),
            hex(&rest[2..])
        ));
    }
    let text = std::str::from_utf8(raw).ok()?.trim();
    let text = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(text);
    let groups: Vec<&str> = text.split('-').collect();
    let shape_ok = groups.len() == 5
        && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()));
    shape_ok.then(|| text.to_ascii_lowercase())
}

/// Compares DNs loosely: case-insensitive, no blanks around separators.
pub(super) fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut escaped = false;
    for c in dn.trim().chars() {
        if escaped {
            out.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                out.push(c);
                escaped = true;
            }
            ',' | '=' | '+' => {
                while out.ends_with(' ') {
                    out.pop();
                }
                out.push(c);
            }
            ' ' if out.ends_with([',', '=', '+']) => {}
            _ => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// The value of a DN's first RDN, unescaped: `cn=Ops\, North,ou=g,dc=x` → `Ops, North`.
pub(super) fn first_rdn_value(dn: &str) -> Option<String> {
    let (_, rest) = dn.trim().split_once('=')?;
    let mut out = Vec::new();
    let mut bytes = rest.bytes().peekable();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => {
                let Some(n) = bytes.next() else { break };
                let hex_pair = bytes
                    .peek()
                    .copied()
                    .filter(|_| n.is_ascii_hexdigit())
                    .filter(u8::is_ascii_hexdigit);
                match hex_pair {
                    Some(m) => {
                        bytes.next();
                        let s = [n, m];
                        let v = std::str::from_utf8(&s)
                            .ok()
                            .and_then(|s| u8::from_str_radix(s, 16).ok())?;
                        out.push(v);
                    }
                    None => out.push(n),
                }
            }
            b',' | b'+' => break,
            _ => out.push(b),
        }
    }
    let s = String::from_utf8_lossy(&out).trim().to_string();
    (!s.is_empty()).then_some(s)
}
