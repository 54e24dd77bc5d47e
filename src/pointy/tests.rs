//! Unit tests of the pointy parser, printer and task sources.
