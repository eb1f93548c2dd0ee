from migrations.common import run

run("customer")
