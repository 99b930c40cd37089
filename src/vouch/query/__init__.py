"""Questions over the verified SBOMs of a release: which images contain a package (`vouch query`), what
changed between two releases (`vouch diff`); the version orderings they need (vers), the matching
(match), the SBOMs as evidence (sboms) and a local cache of attestation blobs (cache)."""
