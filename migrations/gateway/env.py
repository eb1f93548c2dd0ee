from migrations.common import run

run("gateway")
