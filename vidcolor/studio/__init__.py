"""vidcolor studio: colour a film (or photos) by hand in a web page, with the model answering live.

sources.py (the film or photos, by index), choices.py (the person's hints and references as a
folder `run` reads), views.py (a frame grey / automatic / with the choices), coverage.py (where the
anchors still reach), jobs.py (preview and render off the request path), project.py (one studio),
server.py (the web routes and their guard), static/ (the page: plain HTML, CSS and JavaScript).
"""
