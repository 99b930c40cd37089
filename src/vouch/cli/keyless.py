"""cosign's keyless flags, shared by the commands that sign and verify: they only parse; the work is in
`vouch.keyless`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from vouch.cli.base import keyless_trust as keyless_trust  # (re-exported)
from vouch.cli.common import err, load_signer
from vouch.errors import InputError
from vouch.keyless.oids import CI_EXTENSIONS

# The keyless machinery (Fulcio, Rekor, trusted roots, X.509) is imported when a command uses it: `vouch verify
# --key` never does (see vouch.cli.verify).
if TYPE_CHECKING:
    from vouch.keyless.sign import KeylessSigner
    from vouch.signing.signer import KeySigner

IdentityTokenOpt = Annotated[str | None, typer.Option(
    "--identity-token", metavar="TOKEN_OR_FILE", envvar="SIGSTORE_ID_TOKEN", show_envvar=True,
    help="Keyless: the OIDC identity token, or a file holding it (a projected service-account token). Without "
         "--key and without a token, the CI's ambient credential is used.")]
FulcioUrlOpt = Annotated[str | None, typer.Option("--fulcio-url", help="Keyless: a private Fulcio (with --rekor-url "
                                                                       "and --trusted-root).")]
RekorUrlOpt = Annotated[str | None, typer.Option("--rekor-url", help="Keyless: a private Rekor v1.")]
SigningConfigOpt = Annotated[str | None, typer.Option(
    "--signing-config", metavar="FILE", help="Keyless: a sigstore signing_config.json (Fulcio, Rekor, TSA URLs), "
                                             "with --trusted-root.")]
TrustConfigOpt = Annotated[str | None, typer.Option(
    "--trust-config", metavar="FILE", help="Keyless: a sigstore ClientTrustConfig (trusted root + signing config).")]
TrustedRootOpt = Annotated[str | None, typer.Option(
    "--trusted-root", metavar="FILE", help="Keyless: the trusted_root.json of the Sigstore instance (default: the "
                                           "public-good one shipped with the sigstore package).")]
OidcIssuerOpt = Annotated[str | None, typer.Option(
    "--oidc-issuer", help="Accepted for cosign compatibility: the issuer is the token's (no browser flow).")]
IdentityOpt = Annotated[str | None, typer.Option("--certificate-identity",
                                                 help="Keyless: the signer's identity (a SAN of the certificate).")]
IdentityRegexpOpt = Annotated[str | None, typer.Option("--certificate-identity-regexp",
                                                       help="Keyless: a regexp the signer's identity matches.")]
IssuerOpt = Annotated[str | None, typer.Option("--certificate-oidc-issuer",
                                               help="Keyless: the identity's OIDC issuer.")]
IssuerRegexpOpt = Annotated[str | None, typer.Option("--certificate-oidc-issuer-regexp",
                                                     help="Keyless: a regexp the OIDC issuer matches.")]
IgnoreSctOpt = Annotated[bool, typer.Option("--insecure-ignore-sct",
                                            help="Keyless: do not require the certificate's CT log SCT.")]
CiExtensionsOpt = Annotated[list[str] | None, typer.Option(
    "--certificate-extension", metavar="NAME=VALUE",
    help="Keyless: a Fulcio CI extension the certificate must carry with this value (repeatable): "
         + ", ".join(CI_EXTENSIONS) + ".")]


@dataclass(frozen=True)
class SignFlags:
    identity_token: str | None = None
    fulcio_url: str | None = None
    rekor_url: str | None = None
    signing_config: str | None = None
    trust_config: str | None = None
    trusted_root: str | None = None

    def signer(self) -> KeylessSigner:
        from vouch.keyless.sign import KeylessSigner, read_token, trust_config_json

        config = trust_config_json(trust_config=self.trust_config, signing_config=self.signing_config,
                                   trusted_root=self.trusted_root, fulcio_url=self.fulcio_url,
                                   rekor_url=self.rekor_url)
        return KeylessSigner(read_token(self.identity_token), config)


def choose_signer(key: str | None, flags: SignFlags, tlog_upload: bool | None) -> KeySigner | KeylessSigner:
    """--key: the key pair (vouch uploads nothing to a log in key mode); none: keyless, as cosign."""
    if key is None:
        if tlog_upload is False:
            raise InputError("keyless signing always logs in the transparency log: --tlog-upload=false needs --key")
        signer = flags.signer()
        err(f"Signing keyless as {signer.identity.subject} (issuer {signer.identity.issuer})")
        return signer
    if tlog_upload:
        raise InputError("vouch does not upload to a transparency log in key mode yet (keyless/Rekor comes with "
                         "issue 14); pass --tlog-upload=false")
    if wants_keyless(flags.fulcio_url, flags.rekor_url, flags.signing_config, flags.trust_config):
        raise InputError("--key signs with a key pair: leave out --fulcio-url, --rekor-url, --signing-config and "
                         "--trust-config (they are for keyless signing)")
    return load_signer(key)


def wants_keyless(*values: object) -> bool:
    return any(v for v in values)
