"""The release report: per image and platform, what the verified evidence says (signature, SBOM age,
packages per ecosystem, licences, query matches), as JSON and as one self-contained HTML page."""
