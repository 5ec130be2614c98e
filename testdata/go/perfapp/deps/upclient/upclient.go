// Package upclient is a fake third-party client module for gohook's
// performance benchmark: the HTTP service calls its upstream service through
// it (net/http over loopback, connections kept alive and reused).
package upclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client talks to one upstream base URL.
type Client struct {
	base string
	http *http.Client
}

// New returns a client with a connection pool sized for conns concurrent calls.
func New(base string, conns int) *Client {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute}
	return &Client{base: base, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// Get fetches base+path and returns the body.
//
//go:noinline
func (c *Client) Get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("upstream %s: %s", path, resp.Status)
	}
	return body, nil
}
