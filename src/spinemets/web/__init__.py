"""Server-rendered pages of the web app (Jinja2 templates, static CSS/JS, SVG drawings); see routes.py."""
