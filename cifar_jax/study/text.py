"""How numbers read in the tables, pages and console lines of many runs: durations, and counts with their noun."""


def format_duration(seconds: float) -> str:
  """Seconds as h:mm:ss, the tables' wall-time format."""
  minutes, secs = divmod(round(seconds), 60)
  return f'{minutes // 60}:{minutes % 60:02d}:{secs:02d}'


def plural(count: int | float, noun: str) -> str:
  """`1 variant`, `2 variants`, `0 seeds`, `1.5 epochs`: the count and its noun, in the right number."""
  return f'{count:g} {noun}{"" if count == 1 else "s"}'
