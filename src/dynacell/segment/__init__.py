"""dynacell.segment"""
