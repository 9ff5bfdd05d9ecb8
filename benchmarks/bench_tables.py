"""The Markdown every benchmark writes: a header (device, command, versions) and a table of its rows."""

from collections.abc import Iterable, Sequence
from typing import Any

Column = tuple[str, str, str, str]  # (JSON key, Markdown header, format, text when the value is missing)


def header(title: str, env: dict[str, Any], note: str) -> list[str]:
  """'# {title} on N x device (platform)', the command, then the versions and `note`, each followed by a blank line;
  `env` holds device_count, device, platform, command and versions."""
  versions = ', '.join(f'{k} {v}' for k, v in env['versions'].items())
  title = f'# {title} on {env["device_count"]} x {env["device"]} ({env["platform"]})'
  return [title, '', f'`{env["command"]}`', '', f'{versions}; {note}', '']


def table_row(columns: Sequence[Column], row: dict[str, Any]) -> str:
  """One row: each column's value formatted, or its missing text where the row has none."""
  cells = [missing if row.get(key) is None else fmt.format(row[key]) for key, _, fmt, missing in columns]
  return '| ' + ' | '.join(cells) + ' |'


def table(columns: Sequence[Column], rows: Iterable[dict[str, Any]]) -> list[str]:
  """The header line, its separator and one line per row."""
  head = ['| ' + ' | '.join(name for _, name, _, _ in columns) + ' |', '|' + '|'.join('---' for _ in columns) + '|']
  return head + [table_row(columns, row) for row in rows]
