package issuer

import (
	"context"
	"time"
)

// SetSigninSleep replaces the wait that pads a failed sign-in.
func SetSigninSleep(i *Issuer, sleep func(context.Context, time.Duration)) { i.cost.sleep = sleep }
