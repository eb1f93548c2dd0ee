from migrations.common import run

run("monitoring")
