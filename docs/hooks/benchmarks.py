"""MkDocs hook: publish the repository's BENCHMARKS.md as the site's benchmarks page, so the figures
live in one file."""

from pathlib import Path

from mkdocs.structure.files import File


def on_files(files, config):
    source = Path(config["config_file_path"]).parent / "BENCHMARKS.md"
    files.append(File.generated(config, "benchmarks.md", content=source.read_text(encoding="utf-8")))
    return files
