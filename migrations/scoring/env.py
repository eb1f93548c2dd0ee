from migrations.common import run

run("scoring")
