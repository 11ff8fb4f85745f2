from vidcolor.cli import app

app()
