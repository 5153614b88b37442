"""dynacell.models"""
