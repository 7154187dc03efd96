"""Views of a ranking: text, markdown, JSON, CSV and the HTML report."""
