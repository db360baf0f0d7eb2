"""MkDocs hook: publish the repository's BENCHMARKS.md as the site's benchmarks page, so the figures
live in one file. Its links into docs/ are written from the repository root; on the site the page
sits in docs/ itself."""

from pathlib import Path

from mkdocs.structure.files import File


def on_files(files, config):
    source = Path(config["config_file_path"]).parent / "BENCHMARKS.md"
    files.append(File.generated(config, "benchmarks.md", content=source.read_text(encoding="utf-8").replace("](docs/", "](")))
    return files
