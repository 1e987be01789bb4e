"""A knowledge base per agent: uploaded documents, chunked and indexed for search.

extract.py reads txt/md/pdf/docx, text.py chunks and turns text into search terms, store.py keeps
documents and chunks in the database (SQLite FTS5 or PostgreSQL full text), tool.py gives the
LLM brain `search_knowledge`, intent.py lets the offline rule brain answer from it.
"""
