"""``vtn certs``: development CA, VTN server and VEN client certificates.

For development and tests only; production deployments bring their own PKI.
"""

from __future__ import annotations

from pathlib import Path

import click

from vtn.security import certs

KEY_TYPE = click.option(
    "--key-type", type=click.Choice(["rsa", "ecdsa"]), default="ecdsa", show_default=True,
    help="RSA 2048 or ECDSA P-256.",
)
OUT = click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("certs"),
    show_default=True, help="Directory holding the CA and the issued certificates.",
)


def _show(label: str, issued: certs.Issued) -> None:
    click.echo(f"{label}: {issued.cert_path} (key {issued.key_path})")
    click.echo(f"  fingerprint {issued.fingerprint}")


@click.group("certs")
def certs_group() -> None:
    """Development certificates for mutual TLS and XML signatures."""


@certs_group.command("init")
@OUT
@KEY_TYPE
@click.option("--force", is_flag=True, help="Replace an existing CA.")
def certs_init(out: Path, key_type: certs.KeyType, force: bool) -> None:
    """Create a development CA and the VTN server certificate (localhost, 127.0.0.1)."""
    try:
        ca, vtn = certs.init(out, key_type, force=force)
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from exc
    _show("CA", ca)
    _show("VTN", vtn)


@certs_group.command("ven")
@click.argument("name")
@OUT
@KEY_TYPE
def certs_ven(name: str, out: Path, key_type: certs.KeyType) -> None:
    """Issue a VEN client certificate signed by the development CA."""
    if not (out / certs.CA_CERT).exists():
        raise click.ClickException(f"no CA in {out}: run `vtn certs init` first")
    try:
        issued = certs.issue_ven(out, name, key_type)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    _show(f"VEN {name}", issued)
    click.echo(f"  provision it: vtn vens add --name {name} --fingerprint {issued.fingerprint}")


@certs_group.command("fingerprint")
@click.argument("cert", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def certs_fingerprint(cert: Path) -> None:
    """Print the OpenADR fingerprint of a PEM certificate."""
    click.echo(certs.fingerprint_pem(cert.read_bytes()))
