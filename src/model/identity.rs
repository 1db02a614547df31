//! The values a vendor keeps unique across its accounts (a username, an email, roster's
//! external id), and how the vendor compares them. Each connector declares its own
//! (`Vendor::unique_keys`); planning uses them to find two people who would need the same
//! account, and the create protocol to decide whether an account it found is this
//! person's.

use std::borrow::Cow;

use super::{Fields, PersonId};

/// How a vendor compares the values of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// `E1001` and `e1001` are two values.
    Sensitive,
    /// `KDoe` and `kdoe` are the same value (compared in lower case, Unicode-aware).
    Insensitive,
}

/// Where a key's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOf {
    /// A mapped field, by the vendor's field name.
    Field(&'static str),
    /// The person's id (sent as an external id or a client id).
    PersonId,
}

/// A value a vendor keeps unique across its accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UniqueKey {
    /// As messages name it: `username`, `email`, `external id`.
    pub name: &'static str,
    pub of: KeyOf,
    pub case: Case,
    /// Whether the value says *who* an account belongs to (an email, roster's own
    /// external id), rather than being a handle that may be reassigned (a username).
    /// An account found by lookup whose identifying value differs from the person's is
    /// not taken to be theirs.
    pub identifies: bool,
}

impl UniqueKey {
    /// This person's value of the key, when they have one (surrounding blanks ignored).
    pub fn value<'a>(&self, id: &'a PersonId, fields: &'a Fields) -> Option<&'a str> {
        let v = match self.of {
            KeyOf::Field(name) => fields.get(name)?.as_str(),
            KeyOf::PersonId => id.as_str(),
        };
        Some(v.trim()).filter(|v| !v.is_empty())
    }

    /// The form two values are compared in.
    pub fn normalized<'a>(&self, value: &'a str) -> Cow<'a, str> {
        let value = value.trim();
        match self.case {
            Case::Sensitive => Cow::Borrowed(value),
            Case::Insensitive if !value.chars().any(char::is_uppercase) => Cow::Borrowed(value),
            Case::Insensitive => Cow::Owned(value.to_lowercase()),
        }
    }

    /// Whether the vendor takes `a` and `b` for the same value.
    pub fn same(&self, a: &str, b: &str) -> bool {
        self.normalized(a) == self.normalized(b)
    }

    /// How the key compares, for messages.
    pub fn compared(&self) -> &'static str {
        match self.case {
            Case::Sensitive => "",
            Case::Insensitive => " (the vendor ignores case)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_as_the_vendor_compares_them() {
        let username = UniqueKey {
            name: "username",
            of: KeyOf::Field("username"),
            case: Case::Insensitive,
            identifies: false,
        };
        let client = UniqueKey {
            name: "client id",
            of: KeyOf::PersonId,
            case: Case::Sensitive,
            identifies: true,
        };
        assert!(username.same("KDoe", "kdoe"));
        assert!(username.same(" Ünal ", "ünal"));
        assert!(!client.same("E1001", "e1001"));
        let id = PersonId::from("E1");
        let fields: Fields = [("username".to_string(), "  ".to_string())].into();
        assert_eq!(username.value(&id, &fields), None, "blank is no value");
        assert_eq!(client.value(&id, &fields), Some("E1"));
    }
}
