"""``recon train KIND ...``: one sub-command per learned prior family; each writes safetensors plus a JSON card."""

from __future__ import annotations

import typer

train_app = typer.Typer(help="Train a learned prior and write W.safetensors plus its JSON card.",
                        no_args_is_help=True)
