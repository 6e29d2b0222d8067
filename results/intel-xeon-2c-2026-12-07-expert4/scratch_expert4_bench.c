/* scratch: interleaved cold timing of expert variants on the Qwen3-30B-A3B shape, 4-bit weights */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "moe/moe.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static uint64_t s=88172645463325252ull; static float rn(void){s^=s<<13;s^=s>>7;s^=s<<17;return ((s>>11)*0x1p-53-0.5)*3.4f;}
static int cmpd(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  const char *fmt=argv[1]; int M=atoi(argv[2]); int NE=atoi(argv[3]); int reps=atoi(argv[4]);
  const int64_t H=2048,I=768;
  struct moe_expert_params p={.tokens=M,.hidden=H,.inter=I};
  if(!strcmp(fmt,"nvfp4")||!strcmp(fmt,"nvfp4-128x4")||!strcmp(fmt,"nvfp4-a4")){p.weight_dtype=MOE_DTYPE_NVFP4;p.weight_scaling=MOE_SCALING_NVFP4;p.act_quant=strcmp(fmt,"nvfp4-a4")?MOE_ACT_BF16:MOE_ACT_NVFP4;p.weight_sf_layout=strcmp(fmt,"nvfp4-128x4")?MOE_SF_LINEAR:MOE_SF_SWIZZLED_128x4;}
  else {p.weight_dtype=MOE_DTYPE_MXFP4;p.weight_scaling=MOE_SCALING_MX;p.act_quant=MOE_ACT_BF16;}
  struct moe_expert_weights *w=calloc(NE,sizeof *w);
  float *v=malloc(H*I*4);
  size_t bytes=0;
  for(int e=0;e<NE;e++){ struct moe_qtensor *q[3]={&w[e].gate,&w[e].up,&w[e].down};
    for(int t=0;t<3;t++){ *q[t]=(struct moe_qtensor){.dtype=p.weight_dtype,.scaling=p.weight_scaling,.sf_layout=p.weight_sf_layout,.rows=t<2?I:H,.cols=t<2?H:I};
      moe_qtensor_alloc(q[t]); if(e<2){for(int64_t i=0;i<H*I;i++)v[i]=rn()*0.03f; moe_quantize__ref(v,q[t]);} else {memcpy(q[t]->data,w[e%2].gate.data,0); 
        struct moe_qtensor *src=(t==0?&w[e%2].gate:t==1?&w[e%2].up:&w[e%2].down); memcpy(q[t]->data,src->data,moe_qtensor_data_bytes(q[t])); memcpy(q[t]->scales,src->scales,moe_qtensor_scale_bytes(q[t])); q[t]->global_scale=src->global_scale;}
      bytes+= moe_qtensor_data_bytes(q[t])+moe_qtensor_scale_bytes(q[t]); }
  }
  bytes/=NE;
  float *x=malloc(M*H*4),*y=malloc(M*H*4); for(int i=0;i<M*H;i++)x[i]=rn();
  size_t wsb=moe_expert_workspace_bytes(&p); void*ws=aligned_alloc(64,(wsb+63)/64*64);
  int nv=argc-5; moe_expert_fn *fn[8]; double *t[8];
  for(int i=0;i<nv;i++){const struct moe_builtin*b=moe_builtin_find(argv[5+i]); if(!b){fprintf(stderr,"no %s\n",argv[5+i]);return 2;} fn[i]=b->table->expert; t[i]=malloc(reps*sizeof(double));}
  int e=0;
  for(int r=0;r<reps;r++) for(int i=0;i<nv;i++){ double t0=now(); fn[i](&p,x,&w[e],y,ws); t[i][r]=now()-t0; e=(e+1)%NE; }
  for(int i=0;i<nv;i++){ qsort(t[i],reps,sizeof(double),cmpd); double md=t[i][reps/2];
    printf("%-12s M=%d %-34s median %7.1f us  p25 %7.1f  %6.2f GB/s  %5.1f%% of 14.31\n",fmt,M,argv[5+i],md*1e6,t[i][reps/4]*1e6,bytes/md/1e9,bytes/md/1e9/14.31*100);}
  return 0;
}
