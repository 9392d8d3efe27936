"""Developer tools: contact sheets and previews of an avatar performing a hand-made motion track.

Why not a product package: they serve people looking at renders (scripts/gallery.py,
scripts/contact_sheet.py) and the tests' drivers, never a render, an API call or a flow. The folder is
not installed with the project (pyproject.toml lists the product packages); tests import it from the
repository root and scripts put the root on their path. moviepy, which only the contact sheets use, is
in the `dev` extra. An import contract keeps the product packages from importing it.
"""
