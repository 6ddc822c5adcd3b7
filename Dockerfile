FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY commerce commerce
COPY livestream livestream
COPY payments payments
COPY projections projections
COPY redcart redcart
COPY bench bench
RUN pip install --no-cache-dir .
ENV REDCART_HOST=0.0.0.0 REDCART_VAR_DIR=/var/lib/redcart
EXPOSE 8000
CMD ["redcart", "serve", "--host", "0.0.0.0", "--port", "8000"]
