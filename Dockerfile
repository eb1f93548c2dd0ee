FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN pip install --no-cache-dir --no-deps . && useradd --system loancrm
USER loancrm
ENV LOANCRM_VAR_DIR=/tmp/loancrm
CMD ["loancrm", "serve", "gateway"]
