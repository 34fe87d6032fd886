//! What `nft -j list table inet pelagos` shows, reduced to what removal needs: chain and
//! set names, set elements, and each rule's chain, handle and tag (its comment).

use std::collections::HashSet;

use serde_json::Value;

use crate::error::{Error, Result};

/// One rule of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListedRule {
    /// Its chain.
    pub chain: String,
    /// Its handle (for `delete rule … handle N`).
    pub handle: u32,
    /// Its comment: the tag saying whose rule it is.
    pub comment: Option<String>,
}

/// The table's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Listing {
    chains: HashSet<String>,
    sets: HashSet<String>,
    elements: HashSet<String>,
    rules: Vec<ListedRule>,
}

impl Listing {
    /// Reads nft's JSON listing.
    pub fn parse(json: &str) -> Result<Listing> {
        let root: Value = serde_json::from_str(json).map_err(|e| Error::Listing(e.to_string()))?;
        let objects = root
            .get("nftables")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::Listing("no \"nftables\" array".into()))?;
        let mut listing = Listing::default();
        for object in objects {
            listing.add(object)?;
        }
        Ok(listing)
    }

    fn add(&mut self, object: &Value) -> Result<()> {
        if let Some(chain) = object.get("chain") {
            self.chains.insert(string(chain, "name")?);
        } else if let Some(set) = object.get("set") {
            self.sets.insert(string(set, "name")?);
            let elements = set
                .get("elem")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            self.elements
                .extend(elements.filter_map(Value::as_str).map(str::to_owned));
        } else if let Some(rule) = object.get("rule") {
            let handle = rule.get("handle").and_then(Value::as_u64);
            let handle = handle.and_then(|h| u32::try_from(h).ok());
            let handle =
                handle.ok_or_else(|| Error::Listing(format!("rule without handle: {rule}")))?;
            self.rules.push(ListedRule {
                chain: string(rule, "chain")?,
                handle,
                comment: rule
                    .get("comment")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
        }
        Ok(())
    }

    /// Whether the chain exists.
    pub fn has_chain(&self, name: &str) -> bool {
        self.chains.contains(name)
    }

    /// Whether the set exists.
    pub fn has_set(&self, name: &str) -> bool {
        self.sets.contains(name)
    }

    /// Whether the `bridges` set holds `name`.
    pub fn has_element(&self, name: &str) -> bool {
        self.elements.contains(name)
    }

    /// The chains' names.
    pub fn chains(&self) -> impl Iterator<Item = &str> {
        self.chains.iter().map(String::as_str)
    }

    /// The rules tagged `tag`.
    pub fn tagged<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = &'a ListedRule> {
        self.rules
            .iter()
            .filter(move |r| r.comment.as_deref() == Some(tag))
    }

    /// Every rule with a tag starting with `prefix`.
    pub fn tagged_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'a ListedRule> {
        self.rules
            .iter()
            .filter(move |r| r.comment.as_deref().is_some_and(|c| c.starts_with(prefix)))
    }
}

fn string(object: &Value, key: &str) -> Result<String> {
    object
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Error::Listing(format!("no {key:?} in {object}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"nftables":[{"metainfo":{"version":"1.0.6","json_schema_version":1}},
        {"table":{"family":"inet","name":"pelagos","handle":3}},
        {"set":{"family":"inet","name":"bridges","table":"pelagos","type":"ifname","handle":2,"elem":["br0","br1"]}},
        {"chain":{"family":"inet","table":"pelagos","name":"ports","handle":1}},
        {"chain":{"family":"inet","table":"pelagos","name":"ports-abc","handle":4}},
        {"rule":{"family":"inet","table":"pelagos","chain":"ports","handle":7,"comment":"ctr:abc","expr":[{"jump":{"target":"ports-abc"}}]}},
        {"rule":{"family":"inet","table":"pelagos","chain":"ports-abc","handle":8,"expr":[]}}]}"#;

    #[test]
    fn a_listing_is_read() {
        let listing = Listing::parse(SAMPLE).unwrap();
        assert!(listing.has_chain("ports-abc"));
        assert!(!listing.has_chain("forward"));
        assert!(listing.has_set("bridges"));
        assert!(listing.has_element("br1"));
        let tagged: Vec<_> = listing.tagged("ctr:abc").collect();
        assert_eq!(tagged.len(), 1);
        assert_eq!((tagged[0].chain.as_str(), tagged[0].handle), ("ports", 7));
        assert_eq!(listing.tagged_with_prefix("ctr:").count(), 1);
        assert_eq!(listing.tagged_with_prefix("net:").count(), 0);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Listing::parse("not json").is_err());
        assert!(Listing::parse("{}").is_err());
        assert!(Listing::parse(r#"{"nftables":[{"rule":{"chain":"x"}}]}"#).is_err());
    }
}
