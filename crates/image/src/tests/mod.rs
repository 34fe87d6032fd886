//! Unit tests of the image store and the archive formats, on real files in
//! temporary directories (and real skopeo and overlayfs where they matter).

mod archive;
mod images;
mod layers;
mod support;
