FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN pip install --no-cache-dir --no-deps . && useradd --system loancrm \
    && install -d -m 0700 -o loancrm /var/lib/loancrm
USER loancrm
# A volume in docker-compose.yml: what is kept here must outlive the container.
ENV LOANCRM_VAR_DIR=/var/lib/loancrm
CMD ["loancrm", "serve", "gateway"]
