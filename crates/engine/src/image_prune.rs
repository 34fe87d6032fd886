//! `image prune` with Docker's filters: `dangling` (set by `-a`), `until`, `label`, `label!`
//! (moby's `imagesAcceptedFilters`), checked before anything is removed.

use std::collections::{BTreeMap, HashSet};
use std::time::SystemTime;

use pelagos_image::{Digest, ImageRecord, PruneReport};
use pelagos_model::filters::{FilterError, Filters, PruneFilter};

use crate::error::Result;
use crate::Engine;

/// The keys `image prune --filter` accepts.
pub const PRUNE_KEYS: &[&str] = &["dangling", "until", "label", "label!"];

/// Parsed `image prune` filters.
#[derive(Debug, Clone, Default)]
pub struct ImagePruneFilter {
    filter: PruneFilter,
    /// Every unused image, not only the dangling ones.
    all: bool,
}

impl ImagePruneFilter {
    /// Parses `args` as Docker's CLI and daemon do: `-a` is `dangling=false`, without it
    /// `dangling=true`, added to the user's (so `dangling=false` without `-a` conflicts).
    pub fn parse<S: AsRef<str>>(args: &[S], all: bool) -> Result<ImagePruneFilter, FilterError> {
        let mut filters = Filters::parse(args, PRUNE_KEYS)?;
        filters.add("dangling", if all { "false" } else { "true" });
        let dangling_only = filters.bool_or("dangling", true)?;
        Ok(ImagePruneFilter {
            filter: PruneFilter::from_filters(filters)?,
            all: !dangling_only,
        })
    }

    /// Whether only the `label`/`until` part keeps everything (no image must be read).
    fn selects_everything(&self) -> bool {
        let f = self.filter.filters();
        !f.contains("until") && !f.contains("label") && !f.contains("label!")
    }
}

/// Removes the unused images `filter` selects, then what no image references any more.
pub fn prune(engine: &Engine, filter: &ImagePruneFilter) -> Result<PruneReport> {
    let in_use = engine.image_in_use_fn()?;
    // Decided before the store's locks are taken: an image added meanwhile stays.
    let selected: Option<HashSet<Digest>> = match filter.selects_everything() {
        true => None,
        false => Some(selected(engine, filter)?),
    };
    let keep = |id: &Digest| in_use(id) || selected.as_ref().is_some_and(|s| !s.contains(id));
    Ok(engine.images().prune(filter.all, &keep)?)
}

/// The images whose labels and creation time the filter selects.
fn selected(engine: &Engine, filter: &ImagePruneFilter) -> Result<HashSet<Digest>> {
    let mut out = HashSet::new();
    for image in engine.images().list()? {
        if filter
            .filter
            .selects(&labels(engine, &image)?, created(&image))
        {
            out.insert(image.id);
        }
    }
    Ok(out)
}

/// The labels of an image's config.
pub fn labels(engine: &Engine, image: &ImageRecord) -> Result<BTreeMap<String, String>> {
    let config = engine.images().config(image)?;
    Ok(config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default()
        .into_iter()
        .collect())
}

/// The creation time Docker compares `until` with (unknown when the config has none).
pub fn created(image: &ImageRecord) -> Option<SystemTime> {
    image
        .created
        .as_deref()
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangling_follows_all_and_conflicts_as_docker() {
        assert!(!ImagePruneFilter::parse::<&str>(&[], false).unwrap().all);
        assert!(ImagePruneFilter::parse::<&str>(&[], true).unwrap().all);
        assert!(
            ImagePruneFilter::parse(&["dangling=false"], true)
                .unwrap()
                .all
        );
        assert_eq!(
            ImagePruneFilter::parse(&["dangling=false"], false)
                .unwrap_err()
                .to_string(),
            "invalid filter 'dangling=[false true]'"
        );
        assert!(ImagePruneFilter::parse(&["label=a", "until=10m"], false).is_ok());
        assert_eq!(
            ImagePruneFilter::parse(&["reference=x"], false)
                .unwrap_err()
                .to_string(),
            "invalid filter 'reference'"
        );
    }
}
